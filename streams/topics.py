"""Topic names and layouts: the one place they are defined.

Every topic name derives from ``LINKCAST_TOPIC_PREFIX``. Keyed topics share the
partition count so that a link (the key) lands on the same partition number in
every topic; the worker relies on that for its tables.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from streams.settings import KafkaSettings

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class TopicSpec:
    """How one topic is created: name, partitions, replication and topic configs."""

    name: str
    partitions: int
    replication: int
    config: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True)
class Topics:
    """The names of linkcast's topics for one prefix."""

    prefix: str

    @property
    def flows(self) -> str:
        return f"{self.prefix}.flows"

    @property
    def windows(self) -> str:
        return f"{self.prefix}.windows"

    @property
    def classifications(self) -> str:
        return f"{self.prefix}.classifications"

    @property
    def forecasts(self) -> str:
        return f"{self.prefix}.forecasts"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alerts"

    @property
    def link_state(self) -> str:
        return f"{self.prefix}.link-state"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}.deadletter"

    @property
    def models(self) -> str:
        return f"{self.prefix}.models"

    @property
    def ticks(self) -> str:
        """Internal: processing-time ticks that close the bins of silent links."""
        return f"{self.prefix}.ticks"

    @classmethod
    def from_settings(cls, settings: KafkaSettings) -> "Topics":
        return cls(settings.topic_prefix)


def min_insync_replicas(replication: int) -> int:
    """Replicas that must have a write before it counts (producers use acks=all).

    Two of three (or more): one broker may fail without stopping writes or
    losing an acknowledged record. With one or two replicas, one: a second
    required copy would stop every write while one broker of two is down.
    """
    return max(1, min(2, replication - 1))


def topic_specs(settings: KafkaSettings) -> list[TopicSpec]:
    """Every topic linkcast creates, with its partitions, replication and cleanup policy.

    Every topic also carries ``min.insync.replicas`` for its replication
    (``min_insync_replicas``), so durability does not hang on the broker's default.
    """
    topics = Topics.from_settings(settings)
    keyed = settings.partitions
    rf = settings.replication
    isr = {"min.insync.replicas": str(min_insync_replicas(rf))}
    plain = MappingProxyType(isr)
    compacted = MappingProxyType({"cleanup.policy": "compact", **isr})
    one_hour = MappingProxyType({"retention.ms": str(60 * 60 * 1000), **isr})
    # Flows carry their event time as the Kafka timestamp (a replay of a 2019
    # capture says 2019). Retention by time would count from those timestamps and
    # delete a replay at the broker's next check, so flows are kept by size.
    by_size = MappingProxyType(
        {"retention.ms": "-1", "retention.bytes": str(settings.flows_retention_bytes), **isr}
    )
    return [
        # The worker's outputs are stamped with processing time, when they were made.
        TopicSpec(topics.flows, keyed, rf, by_size),
        TopicSpec(topics.windows, keyed, rf, plain),
        TopicSpec(topics.classifications, keyed, rf, plain),
        TopicSpec(topics.forecasts, keyed, rf, plain),
        TopicSpec(topics.alerts, keyed, rf, plain),
        TopicSpec(topics.link_state, keyed, rf, compacted),
        TopicSpec(topics.deadletter, keyed, rf, plain),
        # One partition: model announcements are few and must stay in order.
        TopicSpec(topics.models, 1, rf, compacted),
        TopicSpec(topics.ticks, keyed, rf, one_hour),
    ]

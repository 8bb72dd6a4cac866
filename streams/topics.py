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


def topic_specs(settings: KafkaSettings) -> list[TopicSpec]:
    """Every topic linkcast creates, with its partitions, replication and cleanup policy."""
    topics = Topics.from_settings(settings)
    keyed = settings.partitions
    rf = settings.replication
    # Event time lives in the records themselves. The Kafka timestamp is the time
    # the broker appended the message: time-based retention then counts from when
    # data arrived, so a replay of a capture from years ago is not deleted by the
    # broker's next retention check, whatever timestamp its producer set.
    appended = {"message.timestamp.type": "LogAppendTime"}
    kept = MappingProxyType(appended)
    compacted = MappingProxyType({**appended, "cleanup.policy": "compact"})
    one_hour = MappingProxyType({**appended, "retention.ms": str(60 * 60 * 1000)})
    return [
        TopicSpec(topics.flows, keyed, rf, kept),
        TopicSpec(topics.windows, keyed, rf, kept),
        TopicSpec(topics.classifications, keyed, rf, kept),
        TopicSpec(topics.forecasts, keyed, rf, kept),
        TopicSpec(topics.alerts, keyed, rf, kept),
        TopicSpec(topics.link_state, keyed, rf, compacted),
        TopicSpec(topics.deadletter, keyed, rf, kept),
        # One partition: model announcements are few and must stay in order.
        TopicSpec(topics.models, 1, rf, compacted),
        TopicSpec(topics.ticks, keyed, rf, one_hour),
    ]

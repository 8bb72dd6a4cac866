"""Talking to the cluster as an administrator: is it up, and are our topics there."""

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.exceptions import BrokerUnavailableError, TopicMismatchError
from streams.topics import TopicSpec

log = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36
_UNKNOWN_TOPIC_OR_PARTITION = 3
_INVALID_REPLICATION_FACTOR = 38


async def wait_for_broker(bootstrap: str, timeout_s: float) -> dict[str, object]:
    """Return the cluster metadata once the cluster answers a metadata request.

    Raises BrokerUnavailableError, naming the last error, when ``timeout_s``
    passes without an answer. aiokafka's own log lines about refused
    connections are held back meanwhile: while waiting they are expected.
    """
    with _quiet("aiokafka"):
        return await _wait_for_broker(bootstrap, timeout_s)


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


async def _wait_for_broker(bootstrap: str, timeout_s: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    last_error = ""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrokerUnavailableError(bootstrap, timeout_s, last_error)
        try:
            return await _describe_cluster(bootstrap, min(remaining, 5.0))
        except Exception as exc:  # any failure means "not yet"; the deadline decides
            last_error = str(exc) or type(exc).__name__
        await asyncio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


async def broker_answers(bootstrap: str, within_s: float) -> bool:
    """Whether one of the bootstrap brokers answers a metadata request within ``within_s``.

    A client's start is that request, to the first bootstrap broker that takes
    a connection; a request after it could go to a broker that just died.
    """
    with _quiet("aiokafka"):
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=max(1000, int(within_s * 1000))
        )
        try:
            await asyncio.wait_for(admin.start(), timeout=max(0.5, within_s))
        except Exception:  # refused, timed out, no brokers: all mean "not now"
            return False
        finally:
            await admin.close()
    return True


async def committed_offsets(
    bootstrap: str, group: str, topic: str, partitions: Sequence[int], timeout_s: float = 10.0
) -> dict[int, int]:
    """The offsets ``group`` has committed on ``partitions`` of ``topic``; a partition
    on which the group has committed nothing is left out."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=max(1000, int(timeout_s * 1000))
    )
    try:
        await asyncio.wait_for(admin.start(), timeout=timeout_s)
        asked = [TopicPartition(topic, p) for p in partitions]
        answer = await asyncio.wait_for(
            admin.list_consumer_group_offsets(group, partitions=asked), timeout=timeout_s
        )
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in answer.items() if meta.offset >= 0}


async def _describe_cluster(bootstrap: str, within_s: float) -> dict[str, object]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=max(1000, int(within_s * 1000))
    )
    try:
        await asyncio.wait_for(admin.start(), timeout=max(0.5, within_s))
        cluster: dict[str, object] = await admin.describe_cluster()
        return cluster
    finally:
        await admin.close()


async def ensure_topics(
    bootstrap: str, specs: Sequence[TopicSpec], timeout_s: float = 30.0
) -> list[str]:
    """Create the topics of ``specs`` that do not exist yet; return the names created.

    An existing topic with a different partition count raises TopicMismatchError:
    keyed topics must agree on partitions, and silently using another layout
    would move links between partitions. An existing topic whose configs differ
    from its spec (made by an older linkcast) gets the spec's configs.

    A topic to create with a replication factor above the number of live
    brokers raises TopicMismatchError with what to set; one below
    ``min(3, brokers)`` is allowed (a shared cluster may mean it) but logged as
    a warning. Existing topics are used whatever brokers are down.
    """
    cluster = await wait_for_broker(bootstrap, timeout_s)
    brokers = broker_count(cluster)
    warn_low_replication(specs, brokers)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    await admin.start()
    try:
        response = await admin.create_topics(
            [
                NewTopic(s.name, s.partitions, s.replication, topic_configs=dict(s.config))
                for s in specs
            ]
        )
        created, existing = [], []
        for name, code, message in _topic_errors(response):
            if code == 0:
                created.append(name)
            elif code == _TOPIC_ALREADY_EXISTS:
                existing.append(name)
            elif code == _INVALID_REPLICATION_FACTOR:
                asked = next(s.replication for s in specs if s.name == name)
                raise TopicMismatchError(
                    f"could not create topic {name} with replication factor {asked}: the "
                    f"cluster has {brokers} live broker(s); set LINKCAST_REPLICATION={brokers} "
                    "or start more brokers ('linkcast kafka start --brokers 3')"
                )
            else:
                raise TopicMismatchError(f"could not create topic {name}: error {code} {message}")
        if created:
            log.info("created topics: %s", ", ".join(created))
        # Wait for every topic to show in the metadata, so that a caller that
        # runs next (a worker, the API) finds the topics just created.
        wanted = {s.name: s.partitions for s in specs}
        for name, have in (await _partition_counts(admin, list(wanted), timeout_s)).items():
            if have != wanted[name]:
                raise TopicMismatchError(
                    f"topic {name} has {have} partitions but the settings ask for "
                    f"{wanted[name]}; delete the topic or set LINKCAST_PARTITIONS={have}"
                )
        await _align_configs(admin, [s for s in specs if s.name in existing and s.config])
        return created
    finally:
        await admin.close()


def broker_count(cluster: Mapping[str, object]) -> int:
    """The number of brokers in a ``describe_cluster`` answer."""
    brokers = cluster.get("brokers")
    return len(brokers) if isinstance(brokers, list) else 0


def warn_low_replication(specs: Sequence[TopicSpec], brokers: int) -> None:
    """Log a warning when the cluster could replicate the topics more than they ask."""
    wanted = min(3, brokers)
    low = sorted({s.replication for s in specs if s.replication < wanted})
    if low:
        log.warning(
            "the cluster has %d brokers but topics get replication factor %s: a broker "
            "failure can lose data or stop writes; set LINKCAST_REPLICATION=%d",
            brokers,
            "/".join(map(str, low)),
            wanted,
        )


async def _align_configs(admin: AIOKafkaAdminClient, specs: Sequence[TopicSpec]) -> None:
    """Give existing topics the configs of their specs where they differ."""
    if not specs:
        return
    described = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, s.name) for s in specs]
    )
    have: dict[str, dict[str, str]] = {}
    for response in described:
        for _code, _message, _type, name, entries in response.resources:
            have[name] = {entry[0]: entry[1] for entry in entries}
    stale = [s for s in specs if any(have.get(s.name, {}).get(k) != v for k, v in s.config.items())]
    if not stale:
        return
    responses = await admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, s.name, dict(s.config)) for s in stale]
    )
    for response in responses:
        for code, message, _type, name in response.resources:
            if code != 0:
                raise TopicMismatchError(f"could not update the configs of topic {name}: {message}")
    log.info("updated the configs of topics: %s", ", ".join(s.name for s in stale))


async def _partition_counts(
    admin: AIOKafkaAdminClient, names: list[str], timeout_s: float
) -> dict[str, int]:
    """Partition counts of existing topics, waiting out metadata that is still settling."""
    deadline = time.monotonic() + timeout_s
    counts: dict[str, int] = {}
    while names:
        for t in await admin.describe_topics(names):
            if t["error_code"] == 0 and t["partitions"]:
                counts[t["topic"]] = len(t["partitions"])
        names = [n for n in names if n not in counts]
        if names and time.monotonic() > deadline:
            raise TopicMismatchError(f"no metadata for topics {names} after {timeout_s:g} s")
        if names:
            await asyncio.sleep(0.2)
    return counts


async def delete_topics(
    bootstrap: str, names: Sequence[str], timeout_s: float = 30.0
) -> dict[str, int]:
    """Delete the topics ``names``; return those the cluster refused, with the error code.

    A topic that does not exist counts as deleted.
    """
    await wait_for_broker(bootstrap, timeout_s)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    await admin.start()
    try:
        response = await admin.delete_topics(list(names))
    finally:
        await admin.close()
    return {
        name: int(code)
        for name, code in getattr(response, "topic_error_codes", [])
        if code not in (0, _UNKNOWN_TOPIC_OR_PARTITION)
    }


async def worker_topics(bootstrap: str, app_id: str, timeout_s: float = 30.0) -> list[str]:
    """The topics Faust made for the workers of ``app_id`` (changelog, assignor), named
    ``<app_id>-...``: a throwaway prefix's ``topic_specs`` do not list them."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    await admin.start()
    try:
        return sorted(t for t in await admin.list_topics() if t.startswith(f"{app_id}-"))
    finally:
        await admin.close()


def _topic_errors(response: object) -> list[tuple[str, int, str]]:
    """(topic, error code, message) for each topic of a CreateTopics response."""
    rows = getattr(response, "topic_errors", None) or getattr(response, "topics", [])
    out = []
    for row in rows:
        name, code = row[0], row[1]
        message = row[2] if len(row) > 2 and isinstance(row[2], str) else ""
        out.append((name, int(code), message or ""))
    return out


async def partitions_of(
    bootstrap: str, topic: str, timeout_s: float = 30.0, appear_s: float = 5.0
) -> int:
    """The partition count of ``topic``.

    Raises TopicMismatchError if the topic has not shown in the metadata within
    ``appear_s`` (a topic created a moment ago takes a little while to show).
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    await admin.start()
    try:
        return (await _partition_counts(admin, [topic], appear_s))[topic]
    except TopicMismatchError:
        raise TopicMismatchError(
            f"topic {topic} does not exist; create the topics with 'linkcast topics create'"
        ) from None
    finally:
        await admin.close()

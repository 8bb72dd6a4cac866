"""A three-broker cluster from the local launcher: linkcast's topics and the worker's
changelog get replication factor 3 and min.insync.replicas 2.

The cluster is the package's own (tests/integration/conftest.py: three small
JVMs on ports 23092-23094, deleted afterwards), not the session's broker.
"""

import asyncio
import time
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.admin import ensure_topics
from streams.exceptions import TopicMismatchError
from streams.settings import KafkaSettings, StreamSettings
from streams.topics import topic_specs
from tests.helpers import free_port, linkcast_process, run_linkcast, wait_until

pytestmark = pytest.mark.kafka


async def _layout(bootstrap: str, names: list[str]) -> dict[str, tuple[set[int], str]]:
    """Per topic: the replica counts of its partitions and its min.insync.replicas."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        replicas = {
            t["topic"]: {len(p["replicas"]) for p in t["partitions"]}
            for t in await admin.describe_topics(names)
        }
        described = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
        )
        isr = {}
        for response in described:
            for _code, _message, _type, name, entries in response.resources:
                isr[name] = {e[0]: e[1] for e in entries}["min.insync.replicas"]
        return {n: (replicas[n], isr[n]) for n in names}
    finally:
        await admin.close()


def layout(bootstrap: str, names: list[str]) -> dict[str, tuple[set[int], str]]:
    return asyncio.run(_layout(bootstrap, names))


def test_topics_and_changelog_are_replicated_three_times_with_two_in_sync(
    three_brokers: str, topic_prefix: str, tmp_path: Path
):
    started = time.monotonic()
    env = {
        "LINKCAST_KAFKA_BOOTSTRAP": three_brokers,
        "LINKCAST_TOPIC_PREFIX": topic_prefix,
        "LINKCAST_PARTITIONS": "2",
        "LINKCAST_REPLICATION": "3",
        "LINKCAST_DATA_DIR": str(tmp_path / "worker-state"),
        "LINKCAST_WORKER_PORT": str(free_port()),
        "LINKCAST_MODELS_DIR": str(tmp_path / "registry"),
        "LINKCAST_FORECAST": "false",
        "LINKCAST_CLASSIFY": "false",
    }
    result = run_linkcast(["topics", "create"], env)
    assert result.returncode == 0, result.stderr
    names = [s.name for s in topic_specs(KafkaSettings(topic_prefix=topic_prefix))]
    assert layout(three_brokers, names) == {n: ({3}, "2") for n in names}

    changelog = f"{StreamSettings(topic_prefix=topic_prefix).app_id}-links-changelog"
    with linkcast_process(["worker"], env, tmp_path / "worker.log") as worker:
        wait_until(
            lambda: worker.poll() is not None or _exists(three_brokers, changelog),
            40,
            f"the worker to create {changelog}",
        )
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
    assert layout(three_brokers, [changelog]) == {changelog: ({3}, "2")}
    print(f"three-broker topics and changelog checked in {time.monotonic() - started:.1f} s")


def _exists(bootstrap: str, topic: str) -> bool:
    async def check() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            (described,) = await admin.describe_topics([topic])
            return described["error_code"] == 0 and bool(described["partitions"])
        finally:
            await admin.close()

    return asyncio.run(check())


def test_a_replication_factor_above_the_broker_count_is_refused_with_what_to_set(
    three_brokers: str, topic_prefix: str
):
    settings = KafkaSettings(topic_prefix=topic_prefix, replication=4)
    with pytest.raises(TopicMismatchError, match="LINKCAST_REPLICATION=3"):
        asyncio.run(ensure_topics(three_brokers, topic_specs(settings)))

"""Topic creation against the real broker."""

import asyncio
import dataclasses
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.admin import committed_offsets, ensure_topics, partitions_of
from streams.exceptions import TopicMismatchError
from streams.settings import KafkaSettings
from streams.topics import Topics, TopicSpec, topic_specs
from tests.helpers import read_topic, wait_until

pytestmark = pytest.mark.kafka


async def topic_config(bootstrap: str, topic: str, name: str, timeout_s: float = 10.0) -> str:
    """One config of ``topic``; a topic created a moment ago may show none for a while."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            (response,) = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic)]
            )
            entries = {key: value for key, value, *_ in response.resources[0][4]}
            if name in entries:
                return entries[name]
            assert time.monotonic() < deadline, f"topic {topic} shows no {name} config"
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


def test_topics_are_created_once_with_their_layout(kafka_bootstrap, topic_prefix):
    settings = KafkaSettings(
        kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, partitions=3
    )
    specs = topic_specs(settings)
    created = asyncio.run(ensure_topics(kafka_bootstrap, specs))
    assert sorted(created) == sorted(s.name for s in specs)
    assert asyncio.run(ensure_topics(kafka_bootstrap, specs)) == []  # idempotent
    topics = Topics(topic_prefix)
    assert asyncio.run(partitions_of(kafka_bootstrap, topics.flows)) == 3
    assert asyncio.run(partitions_of(kafka_bootstrap, topics.models)) == 1
    assert asyncio.run(topic_config(kafka_bootstrap, topics.link_state, "cleanup.policy")) == (
        "compact"
    )
    assert asyncio.run(topic_config(kafka_bootstrap, topics.flows, "cleanup.policy")) == "delete"


async def send_with_timestamp(bootstrap: str, topics: list[str], timestamp_ms: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for topic in topics:
            await producer.send_and_wait(topic, b"{}", key=b"k", timestamp_ms=timestamp_ms)
    finally:
        await producer.stop()


# The test broker checks retention every second; another broker may take its
# default five minutes.
RETENTION_CHECK_DEADLINE_S = 330


def test_flows_with_old_event_times_outlive_a_retention_check(kafka_bootstrap, topic_prefix):
    """A replay of a 2001 capture must not fall to the broker's next retention check.

    A control topic with time-based retention shows that the check ran: the same
    message is deleted there while the flows topic keeps it.
    """
    settings = KafkaSettings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    control = TopicSpec(f"{topic_prefix}.control", 1, 1, {"retention.ms": str(86_400_000)})
    asyncio.run(ensure_topics(kafka_bootstrap, [*topic_specs(settings), control]))
    flows = Topics(topic_prefix).flows
    in_2001_ms = 978_307_200_000
    asyncio.run(send_with_timestamp(kafka_bootstrap, [flows, control.name], in_2001_ms))
    wait_until(
        lambda: read_topic(kafka_bootstrap, control.name) == [],
        RETENTION_CHECK_DEADLINE_S,
        "the broker's retention check to delete the control topic's 2001 message",
    )
    (message,) = read_topic(kafka_bootstrap, flows)
    assert message.timestamp == in_2001_ms  # the event time, kept as the Kafka timestamp


def test_a_topic_with_another_partition_count_is_refused(kafka_bootstrap, topic_prefix):
    asyncio.run(
        ensure_topics(
            kafka_bootstrap, topic_specs(KafkaSettings(topic_prefix=topic_prefix, partitions=2))
        )
    )
    with pytest.raises(TopicMismatchError, match="LINKCAST_PARTITIONS=2"):
        asyncio.run(
            ensure_topics(
                kafka_bootstrap, topic_specs(KafkaSettings(topic_prefix=topic_prefix, partitions=4))
            )
        )


def test_an_existing_topic_gets_the_configs_of_its_spec(kafka_bootstrap, topic_prefix):
    """Topics made by an older linkcast are brought up to date, not left as they were."""
    settings = KafkaSettings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    old = [dataclasses.replace(s, config={}) for s in topic_specs(settings)]
    asyncio.run(ensure_topics(kafka_bootstrap, old))
    flows = Topics(topic_prefix).flows
    assert asyncio.run(topic_config(kafka_bootstrap, flows, "retention.ms")) != "-1"
    assert asyncio.run(ensure_topics(kafka_bootstrap, topic_specs(settings))) == []
    wait_until(  # the broker's metadata shows a config change a moment after it is made
        lambda: asyncio.run(topic_config(kafka_bootstrap, flows, "retention.ms")) == "-1",
        10,
        "the flows topic to be kept by size instead of by time",
    )


def test_committed_offsets_are_the_groups_own_and_leave_out_partitions_without_any(
    kafka_bootstrap, topic_prefix
):
    topic = Topics(topic_prefix).flows
    group = f"{topic_prefix}-group"

    async def run() -> dict[int, int]:
        settings = KafkaSettings(
            kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, partitions=2
        )
        await ensure_topics(kafka_bootstrap, topic_specs(settings))
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for i in range(10):
                await producer.send_and_wait(topic, b"x%d" % i, partition=0)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, 0)])
            await consumer.commit({TopicPartition(topic, 0): 6})
        finally:
            await consumer.stop()
        return await committed_offsets(kafka_bootstrap, group, topic, [0, 1])

    assert asyncio.run(run()) == {0: 6}  # partition 1: nothing committed
    assert asyncio.run(committed_offsets(kafka_bootstrap, "nobody", topic, [0, 1])) == {}

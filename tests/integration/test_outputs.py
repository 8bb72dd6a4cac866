"""Outputs handed to the producer in batches land where Kafka's default partitioner puts
each key, in order, and none is lost or doubled (the real broker)."""

import asyncio

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner

from streams.outputs import send_batched
from streams.partitioner import KeyPartitioner
from tests.helpers import read_topic

pytestmark = pytest.mark.kafka


async def _send(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 3, 1)])
    finally:
        await admin.close()
    # 64 KiB batches: the messages below fill several per partition
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=1 << 16)
    await producer.start()
    try:
        handed = await send_batched(producer, KeyPartitioner(), topic, messages)
        await producer.flush()
        return handed
    finally:
        await producer.stop()


def test_batched_outputs_land_in_each_keys_default_partition_in_order(
    kafka_bootstrap, topic_prefix
):
    topic = f"{topic_prefix}.outputs"
    messages = [(f"link-{i % 37}".encode(), f"{i:06d}".encode() * 40) for i in range(3000)]
    handed = asyncio.run(_send(kafka_bootstrap, topic, messages))
    assert handed > 3  # 720 KB of messages in 64 KiB batches: full batches were handed on
    got = read_topic(kafka_bootstrap, topic)
    assert sorted((m.key, m.value) for m in got) == sorted(messages)  # none lost or doubled
    default = DefaultPartitioner()
    for m in got:
        assert m.partition == default(m.key, [0, 1, 2], [0, 1, 2])
    for key in {k for k, _ in messages}:
        sent = [v for k, v in messages if k == key]
        assert [m.value for m in got if m.key == key] == sent  # in order within the key

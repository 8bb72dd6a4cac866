"""Link states written by ``ChangelogWriter`` reach the table's store and its changelog
partition as Faust's own table writes would (the real broker)."""

import asyncio
import contextlib
import json

import faust
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust.types import TP

from streams.changelog import ChangelogWriter
from tests.helpers import read_topic

pytestmark = pytest.mark.kafka


def _table(prefix: str) -> faust.Table:
    app = faust.App(
        f"{prefix}-worker", broker="kafka://unused:1", store="memory://", autodiscover=False, env={}
    )
    return app.Table("links", partitions=2, value_type=bytes)


async def _write(
    bootstrap: str, writer: ChangelogWriter, states: dict[int, list], recorded: dict[int, int]
) -> int:
    all_recorded = asyncio.Event()

    def record(tp: TP, offset: int) -> None:
        recorded[tp.partition] = offset
        if len(recorded) == len(states):
            all_recorded.set()

    writer.table.data.set_persisted_offset = record
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(writer.topic, 2, 1)])
    finally:
        await admin.close()
    # 16 KiB batches: partition 0's states fill several
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=1 << 14)
    await producer.start()
    try:
        sent = await writer.write(producer, states, lambda partition: contextlib.nullcontext())
        await producer.flush()
        await asyncio.wait_for(all_recorded.wait(), 5)  # the delivery callbacks run on the loop
        return sent
    finally:
        await producer.stop()


def test_states_reach_the_store_and_the_changelog_as_fausts_writes_would(
    kafka_bootstrap, topic_prefix
):
    table = _table(topic_prefix)
    writer = ChangelogWriter(table)
    recorded: dict[int, int] = {}
    table.data["gone"] = b"{}"
    states = {
        0: [(f"línk-{i}", json.dumps({"i": i, "pad": "x" * 300}).encode()) for i in range(200)],
        1: [("b", b'{"i":1}'), ("gone", None), ("never-stored", None)],
    }
    sent = asyncio.run(_write(kafka_bootstrap, writer, states, recorded))
    assert sent == 203
    assert dict(table.data) == {name: value for name, value in states[0] + states[1][:1]}
    got = read_topic(kafka_bootstrap, writer.topic)
    for partition, changes in states.items():
        landed = [(m.key, m.value) for m in got if m.partition == partition]
        # keys as Faust writes them (JSON, UTF-8: b'"l\xc3\xadnk-1"'), values unchanged
        assert landed == [(json.dumps(n, ensure_ascii=False).encode(), v) for n, v in changes]
    # each partition's last changelog offset recorded, as Faust does after its sends
    assert recorded == {0: 199, 1: 2}

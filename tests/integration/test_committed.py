"""streams.committed against a real broker: a worker under exactly_once starts each
partition from its changelog's committed messages only."""

import asyncio
import json

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.committed import CommittedState
from streams.processor import write_states

pytestmark = pytest.mark.kafka


class Store:
    """What CommittedState needs of Faust's store: the changelog's encoding (JSON keys,
    raw values, as the worker's table has them), and removing a key without a tombstone,
    or reading it (as Faust's RocksDB store would, through its block cache)."""

    def __init__(self, table: "Table") -> None:
        self.table = table

    def _decode_key(self, key: bytes) -> str:
        return json.loads(key)

    def _decode_value(self, value: bytes) -> bytes:
        return value

    def __delitem__(self, key: str) -> None:
        dict.__delitem__(self.table, key)  # KeyError when absent, as Faust's memory store


class Table(dict):
    """The write side of the worker's table: what CommittedState writes through, with the
    tombstones it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.data = Store(self)
        self.tombstones: list[str] = []

    def on_key_del(self, key: str) -> None:
        self.tombstones.append(key)


async def write_changelog(bootstrap: str, topic: str, tid: str) -> AIOKafkaProducer:
    """Partition 0: a committed transaction, an aborted one, a committed tombstone, and
    a transaction left open (its producer returned, not stopped). Partition 1: one key."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=tid)
    await producer.start()

    async def transaction(writes: list[tuple[str, bytes | None, int]], commit: bool) -> None:
        await producer.begin_transaction()
        for key, value, partition in writes:
            await producer.send_and_wait(
                topic, value, key=json.dumps(key).encode(), partition=partition
            )
        if commit:
            await producer.commit_transaction()
        else:
            await producer.abort_transaction()

    await transaction([("a", b"a1", 0), ("b", b"b1", 0), ("c", b"c1", 1)], commit=True)
    await transaction([("a", b"a-aborted", 0), ("d", b"d-aborted", 0)], commit=False)
    await transaction([("a", b"a2", 0), ("b", None, 0)], commit=True)
    await producer.begin_transaction()
    await producer.send_and_wait(topic, b"a-open", key=b'"a"', partition=0)
    return producer


def test_a_partition_starts_from_its_committed_changelog_only(kafka_bootstrap, topic_prefix):
    topic = f"{topic_prefix}-links-changelog"
    table = Table()
    state = CommittedState(table, kafka_bootstrap, topic)

    async def run() -> None:
        producer = await write_changelog(kafka_bootstrap, topic, f"{topic_prefix}-tx")
        try:
            assert not state.loaded(0)
            assert await state.load([0], within_s=30)
            # a2 committed over a1; the aborted writes and the open one never show;
            # b's tombstone deleted it; partition 1 was not asked for
            assert dict(state) == {"a": b"a2"}
            assert state.loaded(0)
            assert not state.loaded(1)
            assert await state.load([0, 1], within_s=30)  # only 1 is read
            assert dict(state) == {"a": b"a2", "c": b"c1"}

            state["e"] = b"e1"  # a write reaches the table and the copy
            # a delete sends a tombstone though this table (as Faust's may be) lacks the key
            write_states(state, [("c", None), ("never-stored", None)])
            assert table == {"e": b"e1"}
            assert table.tombstones == ["c"]
            assert dict(state) == {"a": b"a2", "e": b"e1"}

            # revoked: everything is dropped
            state.forget()
            assert dict(state) == {}
            assert [p for p in (0, 1) if state.loaded(p)] == []
            # and a load begun before a revoke keeps nothing
            load = asyncio.ensure_future(state.load([0, 1], within_s=30))
            await asyncio.sleep(0)  # the load starts, then waits for the broker
            state.forget()
            assert not await load
            assert dict(state) == {}
            assert [p for p in (0, 1) if state.loaded(p)] == []
        finally:
            await producer.abort_transaction()
            await producer.stop()

    asyncio.run(run())

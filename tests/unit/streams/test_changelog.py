"""ChangelogWriter's store writes follow what the producer holds (no broker: a producer
that takes some batches and then fails; tests/integration/test_changelog.py uses Kafka)."""

import asyncio
import contextlib

import faust
import pytest
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import RecordMetadata, TopicPartition

from streams.changelog import ChangelogWriter


class _Producer:
    """Takes ``takes`` batches (small ones: three states each), then raises as aiokafka's
    does when Kafka is away past its timeout."""

    def __init__(self, takes: int) -> None:
        self.takes = takes
        self.batches: list[tuple[int, int, asyncio.Future]] = []  # partition, count, future

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(220, 0)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int):
        if len(self.batches) == self.takes:
            raise TimeoutError("Kafka away")
        future = asyncio.get_running_loop().create_future()
        self.batches.append((partition, batch.record_count(), future))
        return future


def _writer() -> ChangelogWriter:
    app = faust.App("t-worker", broker="kafka://unused:1", store="memory://", env={})
    return ChangelogWriter(app.Table("links", partitions=2, value_type=bytes))


def _states(partition: int, n: int) -> list[tuple[str, bytes]]:
    return [(f"p{partition}-{i}", b'{"state":"' + b"x" * 20 + b'"}') for i in range(n)]


def test_a_write_cut_short_leaves_in_the_store_only_what_the_producer_holds():
    writer = _writer()
    producer = _Producer(takes=3)
    changes = {0: _states(0, 7), 1: _states(1, 7)}

    async def write() -> None:
        await writer.write(producer, changes, lambda partition: contextlib.nullcontext())

    with pytest.raises(TimeoutError):
        asyncio.run(write())
    held = [(p, count) for p, count, _ in producer.batches]
    assert held == [(0, 3), (1, 3), (0, 3)]  # the partitions take turns
    assert sorted(writer.table.data) == sorted(name for name, _ in changes[0][:6] + changes[1][:3])


def test_a_delivered_batch_records_its_last_offset_unless_its_partitions_were_revoked():
    writer = _writer()
    recorded: dict[int, int] = {}
    writer.table.data.set_persisted_offset = lambda tp, offset: recorded.__setitem__(
        tp.partition, offset
    )
    producer = _Producer(takes=10)

    async def write_and_deliver() -> None:
        await writer.write(
            producer, {0: _states(0, 4), 1: _states(1, 2)}, lambda p: contextlib.nullcontext()
        )
        writer_batches = producer.batches
        for partition, _, future in writer_batches[:2]:  # first batches of 0 and 1
            future.set_result(
                RecordMetadata("t", partition, TopicPartition("t", partition), 100, -1, 0, 0)
            )
        await asyncio.sleep(0)  # their callbacks run
        writer.forget()  # revoked before partition 0's second batch is delivered
        partition, _, future = writer_batches[2]
        future.set_result(
            RecordMetadata("t", partition, TopicPartition("t", partition), 103, -1, 0, 0)
        )
        await asyncio.sleep(0)  # the callbacks

    asyncio.run(write_and_deliver())
    assert recorded == {0: 102, 1: 101}  # base offset + count - 1; not 103 after the revoke

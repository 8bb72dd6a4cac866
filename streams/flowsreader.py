"""``LINKCAST_FLOWS_READER=direct``: the flows topic read by a plain aiokafka consumer.

Why. Through a Faust agent every message pays Faust's own per-message path
(its consumer thread, the conductor, the stream's queue and event): an agent
that only JSON-decodes each flow read about 6,200 records/s on one core of
the bench machine, where a plain aiokafka consumer read about 70,000. That is
a ceiling on the whole worker however cheap linkcast's own work becomes.

How. Faust still owns the group: its agent reads the ticks topic, whose
partitions match the flows topic's, and Faust assigns those partitions and
recovers the links table for them. This reader then reads the flows
partitions with the same numbers, with a consumer that joins no group
(``assign``), and commits their offsets to a group of its own
(``<app id>-flows``), which has no members, so a commit is accepted outside a
generation. A flows partition is read only after its first tick since the
assignment has reached the agent: by then Faust has recovered the table, so
the partition's stored marker is known, and the tick is the Faust event that
table writes for the partition go through (streams.acks ``writing_for``).

The reader starts each partition exactly where the worker's state says (the
larger of the stored marker, the group's committed offset and the first offset
Kafka holds), so none of the in-sequence checks the Faust path needs (Faust
skipping records after an assignment) apply here.

Only ``at_least_once``: the commits are not part of Kafka transactions.
"""

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError
from aiokafka.structs import OffsetAndMetadata

log = logging.getLogger(__name__)

FETCH_BYTES_PER_PARTITION = 8 << 20  # aiokafka's default is 1 MiB, about 1,700 flows


def flows_group(app_id: str) -> str:
    """The consumer group the direct reader commits flows offsets to."""
    return f"{app_id}-flows"


@dataclass(slots=True)
class Held:
    """A flows record held until stored, in the shape streams.acks expects of an event."""

    message: Any  # the aiokafka ConsumerRecord: .partition and .offset


class Commits:
    """Stands in for a Faust stream's ``ack``: notes, per partition, the offset after the
    last record acknowledged, which ``take`` then hands to the reader to commit."""

    def __init__(self) -> None:
        self._next: dict[int, int] = {}

    async def ack(self, held: Held) -> None:
        self._next[held.message.partition] = held.message.offset + 1

    def take(self) -> dict[int, int]:
        taken, self._next = self._next, {}
        return taken


class FlowsReader:
    """A plain consumer of the flows partitions this worker owns."""

    def __init__(self, bootstrap: str, topic: str, group_id: str, client_id: str) -> None:
        self.topic = topic
        self._config: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "group_id": group_id,
            "client_id": client_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            # aiokafka asks again for a partition only once its fetched records are read,
            # and the worker waits out that round trip: fetch more at a time
            "max_partition_fetch_bytes": FETCH_BYTES_PER_PARTITION,
        }
        self._started: AIOKafkaConsumer | None = None  # made in start: it needs the loop
        self.partitions: frozenset[int] = frozenset()
        self.generation = 0  # bumped on every change of partitions

    @property
    def _consumer(self) -> AIOKafkaConsumer:
        if self._started is None:
            raise RuntimeError("the flows reader is not started")
        return self._started

    async def start(self) -> None:
        if self._started is None:
            consumer = AIOKafkaConsumer(**self._config)
            await consumer.start()
            self._started = consumer

    async def stop(self) -> None:
        consumer, self._started = self._started, None
        if consumer is not None:
            await consumer.stop()

    def _tp(self, partition: int) -> TopicPartition:
        return TopicPartition(self.topic, partition)

    async def where_kafka_starts(self, partition: int) -> int | None:
        """The group's committed offset of ``partition``, or its first offset if that is
        further on (retention may have removed what was committed)."""
        tp = self._tp(partition)
        committed = await self._consumer.committed(tp)
        first = (await self._consumer.beginning_offsets([tp])).get(tp)
        known = [o for o in (committed, first) if o is not None]
        return max(known) if known else None

    async def end_offset(self, partition: int) -> int:
        """The partition's end offset, asked of the broker."""
        return (await self.end_offsets([partition]))[partition]

    async def end_offsets(self, partitions: list[int]) -> dict[int, int]:
        """The partitions' end offsets, asked of the broker in one request."""
        ends = await self._consumer.end_offsets([self._tp(p) for p in partitions])
        return {tp.partition: int(end) for tp, end in ends.items()}

    def read(self, positions: dict[int, int]) -> None:
        """Read exactly these partitions, each from its offset.

        aiokafka forgets every position on a new assignment, so every partition is
        placed again, the ones already read included (at their next offset).
        """
        self.generation += 1
        self.partitions = frozenset(positions)
        self._consumer.assign([self._tp(p) for p in sorted(positions)])
        for partition, offset in positions.items():
            self._consumer.seek(self._tp(partition), offset)

    def seek(self, positions: dict[int, int]) -> None:
        """Read on from these offsets (records already fetched past them are dropped)."""
        for partition, offset in positions.items():
            if partition in self.partitions:
                self._consumer.seek(self._tp(partition), offset)

    def stop_reading(self) -> None:
        self.generation += 1
        self.partitions = frozenset()
        if self._started is not None:
            self._started.unsubscribe()

    async def batch(self, timeout_ms: int, max_records: int) -> list[Any]:
        """The next records of the partitions read, in offset order per partition."""
        if not self.partitions:
            return []
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return [record for records in batches.values() for record in records]

    def highwater(self, partition: int) -> int | None:
        """The partition's end offset as the last fetch said (None: not fetched yet)."""
        if partition not in self.partitions:
            return None
        return self._consumer.highwater(self._tp(partition))

    async def position(self, partition: int) -> int | None:
        """The offset of the next record the reader hands out (past any control records
        before it); None when the partition is not read or has no position yet."""
        if partition not in self.partitions:
            return None
        try:  # at once when the position is known; else it would wait for a reset
            return int(await asyncio.wait_for(self._consumer.position(self._tp(partition)), 0.5))
        except (TimeoutError, IllegalStateError):
            return None

    async def commit(self, offsets: dict[int, int]) -> None:
        """Commit each partition's next offset to the reader's group."""
        mine = {p: o for p, o in offsets.items() if p in self.partitions}
        if mine:
            await self._consumer.commit(
                {self._tp(p): OffsetAndMetadata(o, "") for p, o in mine.items()}
            )

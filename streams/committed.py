"""``exactly_once``: the state a worker starts a partition from is the committed changelog.

Under exactly_once the outputs made from a flows partition and the changelog
writes of its links commit in one transaction, so a worker that starts a
partition from exactly the committed changelog publishes nothing twice. Faust
means its table to hold that after recovery, but its recovery (faust-streaming
0.15, faust/tables/recovery.py) can leave the table short of it:

- A standby's changelog events are applied in batches (``standby_buffer_size``,
  1,000) and flushed when a rebalance starts; events fetched while the
  rebalance begins sit in a queue that the rebalance clears
  (``flow_control.clear``) although the consumer's position has passed them.
- ``detect_aborted_tx`` takes a changelog partition as read to its end when the
  consumer's position has reached the highwater. It runs on a timer (after
  10 s without changelog events), also between a new assignment's highwaters
  and its seek, where the position is still the one the previous assignment
  left: seen in the logs of the guarantees test, where the replay of the
  standby's partitions was then skipped.

Either can start a partition from a copy behind the committed changelog; the
records after it are then counted again from the older state and their bins
published a second time. (One CI run of the guarantees test saw 36 windows
published twice with exact totals, which fits; no local run has reproduced
it, so that cause is likely, not proven.) So under exactly_once the worker
reads each partition it is assigned from the changelog itself,
read_committed, up to the last stable offset, before it handles a message of
it, and its processor reads state from that copy only.
Writes still go through the Faust table (and so into the transaction of the
partition). The copy costs memory: one encoded snapshot per link of the
partitions the worker owns, besides the links themselves.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.exceptions import LinkcastError

log = logging.getLogger(__name__)

READ_S = 60.0  # no changelog message for this long while reading: try again


class CommittedState(MutableMapping[str, Any]):
    """The table's committed content for the partitions loaded, read from its changelog.

    Reads answer from that copy; writes go to the table and to the copy. Call
    ``load`` for a partition before anything reads a key of it, and ``forget``
    when partitions are revoked.
    """

    def __init__(self, table: Any, bootstrap: str, changelog_topic: str) -> None:
        self.table = table
        self.bootstrap = bootstrap
        self.changelog_topic = changelog_topic
        self._data: dict[str, Any] = {}
        self._loaded: set[int] = set()
        self._generation = 0  # moves on at each forget: a load begun before is dropped

    def loaded(self, partition: int) -> bool:
        return partition in self._loaded

    def forget(self) -> None:
        """Drop every partition's copy (partitions revoked: the next assignment reloads)."""
        self._data.clear()
        self._loaded.clear()
        self._generation += 1

    async def load(self, partitions: Iterable[int], within_s: float = READ_S) -> bool:
        """Read the committed changelog of ``partitions`` not loaded yet. False if
        ``forget`` was called meanwhile (nothing is kept: the partitions were revoked)."""
        wanted = sorted(set(partitions) - self._loaded)
        if not wanted:
            return True
        generation = self._generation
        started = time.monotonic()
        store = self.table.data  # Faust's store: it encodes the changelog's keys and values
        latest: dict[str, Any] = {}

        def fold(message: Any) -> None:
            key = store._decode_key(message.key)
            if message.value is None:
                latest.pop(key, None)
            else:
                latest[key] = store._decode_value(message.value)

        read = await read_committed(
            self.bootstrap, self.changelog_topic, wanted, fold, stalled_s=within_s
        )
        if generation != self._generation:
            return False
        self._data.update(latest)
        self._loaded.update(wanted)
        log.info(
            "exactly_once: flows partitions %s start from their committed changelog "
            "(%d messages, %d keys, %.2f s)",
            wanted,
            read,
            len(latest),
            time.monotonic() - started,
        )
        return True

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.table[key] = value
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        # a tombstone whatever Faust's own store holds, which may be short of the copy;
        # then the store's delete, which reads nothing (``pop`` would read the state
        # first, from RocksDB: see ``streams.processor.write_states``)
        self.table.on_key_del(key)
        with contextlib.suppress(KeyError):
            del self.table.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


async def read_committed(
    bootstrap: str,
    topic: str,
    partitions: list[int],
    fold: Callable[[Any], None],
    stalled_s: float = READ_S,
) -> int:
    """Hand every committed message of ``partitions`` of ``topic`` to ``fold``, in offset
    order per partition, up to each one's last stable offset now; return how many.
    Raises LinkcastError when no message comes for ``stalled_s``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        isolation_level="read_committed",  # end_offsets then answers the last stable offset
    )
    await asyncio.wait_for(consumer.start(), stalled_s)
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await asyncio.wait_for(consumer.end_offsets(tps), stalled_s)
        read = 0
        progress_s = time.monotonic()
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() - progress_s > stalled_s:
                raise LinkcastError(
                    f"reading {topic} partitions {partitions} to their last stable offsets "
                    f"{[ends[tp] for tp in tps]}: nothing came in {stalled_s:.0f} s"
                )
            batches = await consumer.getmany(*tps, timeout_ms=200)
            for tp in tps:
                for message in batches.get(tp, ()):
                    fold(message)
                    read += 1
            if batches:
                progress_s = time.monotonic()
        return read
    finally:
        await consumer.stop()

"""Link states written to the Faust table's store, and to its changelog a batch per
partition (``at_least_once``).

A Faust table sends a changelog message for every key set, one at a time
through Faust's producer buffer and then aiokafka's ``send``, and after each
one's delivery writes that message's offset to the partition's RocksDB. At
100,000 links a checkpoint stores tens of thousands of states, and py-spy
put about 14 % of ``linkcast bench stream --links 100000`` in that path
(``Table.on_key_set``, Faust's buffer and topic sends, aiokafka's ``send``).
This writer sets the store (``table.data``: the local RocksDB or memory,
without the changelog message) and stages the changelog messages; ``send``
hands them to aiokafka's producer a batch per partition (``streams.outputs``)
and, when a batch is delivered, records its last offset as the partition's
persisted offset, as Faust does per message, so that a restart on the same
data dir reads the changelog only from there on.

The messages are those Faust would send: the key encoded by the changelog
topic's ``prepare_key`` with the table's key serializer, the value as it is (the
table's values are raw bytes, which ``ChangelogWriter`` checks when built).
Under ``exactly_once`` the table writes as before: the changelog writes are part
of each checkpoint's transaction (``streams.transactions``).
"""

import functools
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from faust.types import TP

from streams.outputs import send_to_partitions
from streams.processor import write_states

log = logging.getLogger(__name__)


class ChangelogWriter:
    """Writes link states to a Faust table's store and stages them for its changelog."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.topic: str = table.changelog_topic.get_topic_name()
        probe = b'{"probe":1}'
        prepared = table.changelog_topic.prepare_value(probe, table.value_serializer)
        if prepared != (probe, None):
            raise TypeError(
                f"the table's changelog values are not its raw bytes ({probe!r} became "
                f"{prepared!r}): write through the table instead"
            )
        self._staged: dict[int, list[tuple[bytes, bytes | None]]] = {}

    def store(self, partition: int, changes: list[tuple[str, bytes | None]]) -> None:
        """Write states (None: delete) of links of ``partition`` to the table's store,
        and stage their changelog messages for ``send``.

        Faust's RocksDB store writes to the database of the current event's partition:
        call it where the current event is one of ``partition`` (``Acknowledger.writing_for``).
        """
        write_states(self.table.data, changes)
        prepare_key = self.table.changelog_topic.prepare_key
        serializer = self.table.key_serializer
        staged = self._staged.setdefault(partition, [])
        staged += [(prepare_key(name, serializer)[0], value) for name, value in changes]

    async def send(self, producer: AIOKafkaProducer) -> int:
        """Hand the staged changelog messages to ``producer``; return how many. The
        producer's ``flush`` waits for their delivery, as for any message sent."""
        staged, self._staged = self._staged, {}
        if not staged:
            return 0
        handed = await send_to_partitions(producer, self.topic, staged)
        for partition, count, future in handed:
            future.add_done_callback(functools.partial(self._delivered, partition, count))
        return sum(count for _, count, _ in handed)

    def _delivered(self, partition: int, count: int, future: Any) -> None:
        if future.cancelled() or future.exception() is not None:
            # as with Faust's own sends: logged; the states are in the local store, and
            # the next write of each of these links sends it again
            error = "cancelled" if future.cancelled() else repr(future.exception())
            log.error(
                "%d changelog messages to %s[%d] were not delivered: %s",
                count,
                self.topic,
                partition,
                error,
            )
            return
        last = future.result().offset + count - 1
        try:
            self.table.data.set_persisted_offset(TP(self.topic, partition), last)
        except Exception as exc:  # the partition's database closed meanwhile (revoked)
            log.debug("recording the changelog offset of partition %d: %r", partition, exc)

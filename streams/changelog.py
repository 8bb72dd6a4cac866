"""Link states written to the Faust table's store and to its changelog in batches
(``at_least_once``).

A Faust table sends a changelog message for every key set, one at a time
through Faust's producer buffer and then aiokafka's ``send``, and after each
one's delivery writes that message's offset to the partition's RocksDB. At
100,000 links a checkpoint stores tens of thousands of states, and py-spy
put 20 % of the worker's samples in ``linkcast bench stream --links 100000``
in that path (``Table.on_key_set``, the RocksDB writes, Faust's buffer and topic
sends, aiokafka's ``send``).

``ChangelogWriter.write`` fills aiokafka batches instead, one partition after
another in turn (a partition's next batch waits for its last one to leave, the
others go meanwhile). Each batch is written to the table's store
(``table.data``: the local RocksDB or memory, with no changelog message of its
own) as soon as the producer holds it, never before: a write cut short (a
stop's time limit, Kafka away past the producer's timeout) leaves no state in
the local store that the changelog lacks, as with Faust's own sends, whose
buffer its producer flushes when it stops. When a batch is delivered, its last
offset becomes the partition's persisted offset, as Faust records per message,
so that a restart on the same data dir reads the changelog only from there on.

The messages are those Faust would send: the key encoded by the changelog
topic's ``prepare_key`` with the table's key serializer, the value as it is
(the states are bytes, which Faust sends unchanged whatever the table's value
serializer; ``ChangelogWriter`` checks it when built), to the partition the
link's records come from (Faust's co-partitioning check is not needed: the
partition is given). Under ``exactly_once`` the table writes as before: its
changelog writes are part of each checkpoint's transaction
(``streams.transactions``).
"""

import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from faust.types import TP

from streams.processor import write_states

log = logging.getLogger(__name__)

#: Per partition: its states to write, in order (None: delete the link's state).
Changes = dict[int, list[tuple[str, bytes | None]]]


class ChangelogWriter:
    """Writes link states to a Faust table's store and changelog, a batch at a time."""

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
        self.generation = 0  # moves on when partitions are revoked (``forget``)

    def forget(self) -> None:
        """Partitions were revoked: batches still in flight record no offset when delivered
        (the partition's database may be another worker's to fill by then)."""
        self.generation += 1

    async def write(
        self,
        producer: AIOKafkaProducer,
        changes: Changes,
        writing_for: Callable[[int], contextlib.AbstractContextManager[Any]],
    ) -> int:
        """Write ``changes`` to the store and hand them to ``producer`` for the changelog;
        return how many. The producer's ``flush`` waits for their delivery, as for any
        message sent.

        ``writing_for(partition)``: a context in which the store writes to that
        partition's database (Faust's RocksDB store takes it from the current event;
        ``Acknowledger.writing_for``). Nothing awaits inside it.
        """
        prepare_key = self.table.changelog_topic.prepare_key
        serializer = self.table.key_serializer
        left = {p: (states, 0) for p, states in changes.items() if states}
        written = 0
        while left:
            for partition, (states, start) in list(left.items()):
                batch = producer.create_batch()
                end = start
                for name, value in states[start:]:
                    key = prepare_key(name, serializer)[0]
                    # an empty batch takes any one message
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        break
                    end += 1
                if end == start:
                    raise ValueError(f"the state of {states[start][0]} fits in no batch")
                future = await producer.send_batch(batch, self.topic, partition=partition)
                with writing_for(partition):  # the producer holds them: now the store
                    write_states(self.table.data, states[start:end])
                future.add_done_callback(
                    functools.partial(self._delivered, partition, end - start, self.generation)
                )
                written += end - start
                if end < len(states):
                    left[partition] = (states, end)
                else:
                    del left[partition]
        return written

    def _delivered(self, partition: int, count: int, generation: int, future: Any) -> None:
        if future.cancelled() or future.exception() is not None:
            # As with Faust's own sends: logged, and the records are acknowledged all the
            # same (the producer's flush does not fail). The states are in this worker's
            # store; each link's next write sends its state again, but a worker that
            # takes the partition over before that starts from the changelog without it.
            error = "cancelled" if future.cancelled() else repr(future.exception())
            log.error(
                "%d changelog messages to %s[%d] were not delivered: %s",
                count,
                self.topic,
                partition,
                error,
            )
            return
        if generation != self.generation:
            return  # revoked meanwhile: the offset is no longer this worker's to record
        last = future.result().offset + count - 1
        self.table.data.set_persisted_offset(TP(self.topic, partition), last)

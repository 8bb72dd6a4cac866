"""``exactly_once``: one Kafka transaction per flows partition per checkpoint.

With ``LINKCAST_PROCESSING_GUARANTEE=exactly_once`` Faust (faust-streaming
0.15) starts a transactional producer for each partition it assigns, with the
id ``<app id>-<topic group>-<partition>`` (faust/transport/consumer.py,
``TransactionManager.on_rebalance``), and its consumer commits offsets by
``send_offsets_to_transaction`` then ``commit_transaction`` on that producer
(``TransactionManager.commit``; aiokafka driver ``commit_transactions``). It
reads its inputs and changelogs ``read_committed``. A new owner of a
partition starts a producer with the same id, which fences the old one and
aborts its open transaction.

What Faust leaves out, and what linkcast does about it:

- Outputs. ``TransactionManager.send`` picks the producer by the partition of
  the *output* topic that ``key_partition`` finds in the consumer's metadata,
  which knows only subscribed topics: for windows, classifications and the
  other outputs it returns None and the message goes out on the plain,
  non-transactional producer (``force=True`` or not: ``force`` only skips
  Faust's attachments). So ``publish`` sends each output itself on the
  producer of the flows partition whose records made it (``send``).
- Changelog writes go through Faust's producer buffer and reach the producer
  of the changelog partition, which is the source partition's (table and flows
  topic are co-partitioned; ``id_for`` checks it). The buffer is drained by a
  task, so before a commit ``buffer_handed_over`` waits for it.
- Commits. Faust commits on a timer and every N acknowledgements, at any
  point of a drain. Here the worker commits itself at each checkpoint, after
  storing every pending link (streams.acks), and Faust's timer never finds
  anything new to commit.
- Highwaters. Under exactly_once Faust's consumer answers ``highwaters`` with
  the last stable offset its last fetch left (faust/transport/drivers/aiokafka.py
  ``AIOKafkaConsumerThread._highwaters``): -1 for a partition not fetched since
  the assignment. Recovery then takes a standby's changelog offset for
  inconsistent and crashes (``ConsistencyError``, seen when a standby became
  active after a kill), and the worker's own catch-up check is fooled.
  ``ask_broker_for_highwaters`` makes it ask the broker, as it does under
  at_least_once; the consumer reads ``read_committed``, so the broker answers
  with the last stable offset.
- Local state. Table writes reach RocksDB at once, committed or not; after
  ``kill -9`` the files hold writes of the aborted transaction. Faust meant to
  record a changelog offset on commit, but keys it by changelog partition and
  looks it up by source partition (faust/tables/base.py ``_on_changelog_sent``,
  faust/tables/manager.py ``on_commit_tp``), so under exactly_once it never
  records one. Its recovery then mostly replays the whole changelog, but not
  always (``detect_aborted_tx`` can skip the replay, see streams.committed).
  So the processor does not read the table: it reads the committed changelog,
  which the worker reads itself at each assignment (streams.committed). A
  worker also starts from an empty data dir (``discard_local_state``), so that
  no aborted write lingers on disk.
"""

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any

import faust

from streams.exceptions import LinkcastError

log = logging.getLogger(__name__)

NEVER_S = 10 * 365 * 86400.0  # Faust's own commit timer: the worker commits itself


class Transactions:
    """The transactional producers Faust keeps, addressed by flows partition."""

    def __init__(self, app: faust.App, source_topic: str, changelog_topic: str) -> None:
        self.app = app
        self.source_topic = source_topic
        self.changelog_topic = changelog_topic

    def id_for(self, partition: int) -> str:
        """The transactional id of ``partition`` of the flows topic (as Faust forms it)."""
        assignor = self.app.assignor
        group = assignor.group_for_topic(self.source_topic)
        if assignor.group_for_topic(self.changelog_topic) != group:
            raise LinkcastError(
                f"{self.changelog_topic} and {self.source_topic} have different partition "
                "counts, so their writes would commit in different transactions; recreate the "
                "changelog with LINKCAST_PARTITIONS partitions"
            )
        return f"{self.app.conf.id}-{group}-{partition}"

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int
    ) -> None:
        """Hand a message made from records of flows ``partition`` to its transaction."""
        await self.app.producer.send(
            topic, key, value, None, None, None, transactional_id=self.id_for(partition)
        )

    async def buffer_handed_over(self) -> None:
        """Wait until every message in Faust's producer buffer now (the table's changelog
        writes) has been handed to its Kafka producer, so that a commit includes it."""
        await buffer_handed_over(self.app)

    async def commit(self) -> bool:
        """Commit the acknowledged offsets, each partition's with its transaction."""
        return await self.app.consumer.commit()


async def buffer_handed_over(app: faust.App) -> None:
    """Wait until every message in Faust's producer buffer now (the table's changelog
    writes) has been handed to its Kafka producer. Faust's own ``flush`` of the buffer
    stops after 0.1 s without a message sent, whatever the buffer still holds."""
    mark = _Mark()
    app.producer.buffer.put(mark)  # type: ignore[arg-type]  # a stand-in FutureMessage
    await mark


async def delivered(app: faust.App) -> None:
    """Wait until everything sent so far, the changelog writes included, is delivered."""
    await buffer_handed_over(app)
    await app.producer.flush()


class _Mark(asyncio.Future[None]):
    """Put in Faust's producer buffer, it resolves when the buffer's task reaches it.

    The buffer sends its messages one by one, in order, each with
    ``await message.channel.publish_message(future)``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.message = self
        self.channel = self

    async def publish_message(self, fut: Any, wait: bool = False) -> None:
        if not self.done():
            self.set_result(None)


def ask_broker_for_highwaters() -> None:
    """Have Faust's Kafka consumer (all of them in this process) ask the broker for each
    partition's end, as Faust does under at_least_once, instead of using the value its
    last fetch left."""
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    async def highwaters(self: AIOKafkaConsumerThread, partitions: list[Any]) -> Any:
        return await self._ensure_consumer().end_offsets(partitions)

    AIOKafkaConsumerThread._highwaters = highwaters  # type: ignore[method-assign]


def discard_local_state(datadir: Path) -> None:
    """Empty a worker's RocksDB folder: under exactly_once it may hold aborted writes."""
    if datadir.exists():
        log.info("exactly_once: starting from an empty %s; state comes from the changelog", datadir)
        shutil.rmtree(datadir)

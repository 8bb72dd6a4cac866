"""The API's materialized view: the latest LinkState of every link.

The view reads the compacted link-state topic from the beginning with its own
consumer (no group: every replica reads every partition) and keeps following
it. It is ready once it has read up to the end offsets it saw at start and the
broker answered recently. It never touches the worker's tables.
"""

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from streams.admin import partitions_of, wait_for_broker
from streams.schemas import LinkState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str


class LinkStateView:
    """Follows ``topic`` into a dict of link id -> latest LinkState."""

    def __init__(self, bootstrap: str, topic: str, *, broker_check_s: float = 5.0) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.broker_check_s = broker_check_s
        self.links: dict[str, LinkState] = {}
        self.invalid_records = 0
        self.last_update_s: float | None = None
        self._caught_up = False
        self._broker_ok_at: float | None = None
        self._broker_error = "not checked yet"
        self._consumer: AIOKafkaConsumer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._start_offsets: dict[TopicPartition, int] = {}

    # ---- lifecycle -----------------------------------------------------

    async def start(self, timeout_s: float) -> None:
        await wait_for_broker(self.bootstrap, timeout_s)
        partitions = await partitions_of(self.bootstrap, self.topic, timeout_s)
        self._broker_ok_at = time.monotonic()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            group_id=None,
        )
        await consumer.start()
        self._consumer = consumer
        tps = [TopicPartition(self.topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        self._start_offsets = await consumer.end_offsets(tps)
        self._tasks = [
            asyncio.create_task(self._follow(consumer), name="view-follow"),
            asyncio.create_task(self._check_broker(consumer), name="view-broker-check"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._consumer is not None:
            await self._consumer.stop()

    # ---- state ---------------------------------------------------------

    def readiness(self) -> Readiness:
        if self._consumer is None:
            return Readiness(False, "the view has not started")
        for task in self._tasks:
            if task.done():
                error = task.exception() if not task.cancelled() else None
                return Readiness(False, f"the view stopped following {self.topic}: {error!r}")
        if (
            self._broker_ok_at is None
            or time.monotonic() - self._broker_ok_at > 3 * self.broker_check_s
        ):
            return Readiness(
                False, f"the broker at {self.bootstrap} is not answering: {self._broker_error}"
            )
        if not self._caught_up:
            return Readiness(
                False, f"the view is still reading {self.topic} ({len(self.links)} links so far)"
            )
        return Readiness(True, "ok")

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Apply one message of the link-state topic (a tombstone removes the link)."""
        if value is None:
            if key is not None:
                self.links.pop(key.decode(errors="replace"), None)
            return
        try:
            state = LinkState.model_validate_json(value)
        except ValidationError as exc:
            self.invalid_records += 1
            log.warning("skipping an invalid link-state record: %s", exc.errors()[0]["msg"])
            return
        self.links[state.link] = state
        self.last_update_s = time.time()

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                await self._read_some(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker may come back; /ready reports it meanwhile
                self._broker_error = f"reading {self.topic} failed: {exc!r}"
                log.warning("reading %s failed, retrying in 1 s: %r", self.topic, exc)
                await asyncio.sleep(1.0)

    async def _read_some(self, consumer: AIOKafkaConsumer) -> None:
        batches = await consumer.getmany(timeout_ms=500, max_records=5000)
        for messages in batches.values():
            for message in messages:
                self.apply(message.key, message.value)
        if not self._caught_up:
            positions = {tp: await consumer.position(tp) for tp in self._start_offsets}
            if all(positions[tp] >= end for tp, end in self._start_offsets.items()):
                self._caught_up = True
                log.info("view caught up with %s: %d links", self.topic, len(self.links))

    async def _check_broker(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                await asyncio.wait_for(consumer.topics(), timeout=self.broker_check_s)
                self._broker_ok_at = time.monotonic()
            except Exception as exc:  # any failure counts as "not answering"; reported by /ready
                self._broker_error = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(self.broker_check_s)

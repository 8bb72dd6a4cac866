"""Following the output topics with one consumer, and saying whether the view has caught up.

The follower reads without a consumer group (every replica reads every
partition) and never commits. It reads committed messages only: a worker's
aborted transactions never reach the view. At start it seeks each partition of a compacted
topic (link-state, models) to its beginning, and each partition of the other
followed topics to the first message at most ``lookback_s`` old by message
time (the worker stamps its outputs when it makes them), then keeps reading.
It is caught up once it has read up to the end offsets it saw at start; it is
ready while it is caught up, its tasks run and the broker answered recently.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from api.viewstate import Role
from streams.admin import partitions_of, wait_for_broker

log = logging.getLogger(__name__)

#: (role, key, value, message timestamp in epoch seconds)
OnMessage = Callable[[Role, bytes | None, bytes | None, float], None]


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str


@dataclass(frozen=True)
class Feed:
    """One followed topic: its role in the view and whether it is read from the beginning."""

    role: Role
    topic: str
    from_beginning: bool


class Follower:
    def __init__(
        self,
        bootstrap: str,
        feeds: Sequence[Feed],
        on_message: OnMessage,
        *,
        lookback_s: float,
        broker_check_s: float = 5.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.feeds = {f.topic: f for f in feeds}
        self.on_message = on_message
        self.lookback_s = lookback_s
        self.broker_check_s = broker_check_s
        self.lag: dict[str, int] = {}  # records behind the partitions' high watermarks, by role
        self._caught_up = False
        self._broker_ok_at: float | None = None
        self._broker_error = "not checked yet"
        self._consumer: AIOKafkaConsumer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._start_offsets: dict[TopicPartition, int] = {}

    # ---- lifecycle -----------------------------------------------------

    async def start(self, timeout_s: float) -> None:
        await wait_for_broker(self.bootstrap, timeout_s)
        tps: list[TopicPartition] = []
        for topic in self.feeds:
            partitions = await partitions_of(self.bootstrap, topic, timeout_s)
            tps.extend(TopicPartition(topic, p) for p in range(partitions))
        self._broker_ok_at = time.monotonic()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            group_id=None,
            # a worker under exactly_once writes in transactions: what it aborted (a
            # crash, a revoke) is redone by the next owner and must not show twice
            isolation_level="read_committed",
        )
        await consumer.start()
        self._consumer = consumer
        consumer.assign(tps)
        await self._seek(consumer, tps)
        self._start_offsets = await consumer.end_offsets(tps)
        self._tasks = [
            asyncio.create_task(self._follow(consumer), name="view-follow"),
            asyncio.create_task(self._check_broker(consumer), name="view-broker-check"),
        ]

    async def _seek(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        from_start = [tp for tp in tps if self.feeds[tp.topic].from_beginning]
        recent = [tp for tp in tps if not self.feeds[tp.topic].from_beginning]
        if from_start:
            await consumer.seek_to_beginning(*from_start)
        if recent:
            since_ms = int((time.time() - self.lookback_s) * 1000)
            found = await consumer.offsets_for_times(dict.fromkeys(recent, since_ms))
            ends = await consumer.end_offsets(recent)
            for tp in recent:
                at = found.get(tp)
                consumer.seek(tp, at.offset if at is not None else ends[tp])

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
        topics = ", ".join(self.feeds)
        if self._consumer is None:
            return Readiness(False, "the view has not started")
        for task in self._tasks:
            if task.done():
                error = task.exception() if not task.cancelled() else None
                return Readiness(False, f"the view stopped following {topics}: {error!r}")
        if (
            self._broker_ok_at is None
            or time.monotonic() - self._broker_ok_at > 3 * self.broker_check_s
        ):
            return Readiness(
                False, f"the broker at {self.bootstrap} is not answering: {self._broker_error}"
            )
        if not self._caught_up:
            return Readiness(False, f"the view is still reading {topics}")
        return Readiness(True, "ok")

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                await self._read_some(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker may come back; /ready reports it meanwhile
                self._broker_error = f"reading failed: {exc!r}"
                log.warning("reading the view's topics failed, retrying in 1 s: %r", exc)
                await asyncio.sleep(1.0)

    async def _read_some(self, consumer: AIOKafkaConsumer) -> None:
        batches = await consumer.getmany(timeout_ms=500, max_records=5000)
        for tp, messages in batches.items():
            role = self.feeds[tp.topic].role
            for message in messages:
                self.on_message(role, message.key, message.value, message.timestamp / 1000.0)
        if not self._caught_up:
            positions = {tp: await consumer.position(tp) for tp in self._start_offsets}
            if all(positions[tp] >= end for tp, end in self._start_offsets.items()):
                self._caught_up = True
                log.info("the view caught up with %s", ", ".join(self.feeds))

    async def _check_broker(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                await asyncio.wait_for(consumer.topics(), timeout=self.broker_check_s)
                self._broker_ok_at = time.monotonic()
                await self._measure_lag(consumer)
            except Exception as exc:  # any failure counts as "not answering"; reported by /ready
                self._broker_error = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(self.broker_check_s)

    async def _measure_lag(self, consumer: AIOKafkaConsumer) -> None:
        lag: dict[str, int] = {}
        for tp in self._start_offsets:
            high = consumer.last_stable_offset(tp)  # read_committed reads up to it
            if high is None or high < 0:
                continue
            role = self.feeds[tp.topic].role
            lag[role] = lag.get(role, 0) + max(0, high - await consumer.position(tp))
        self.lag = lag

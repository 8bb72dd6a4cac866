"""Publishing flow records to Kafka, paced in event time or as fast as the broker takes them.

Each record goes to the flows topic keyed by its link id, with its event time
as the Kafka message timestamp. ``speed`` divides the gaps between event times:
1.0 replays in real time, 10.0 ten times faster, None publishes at once. A gap
longer than ``max_gap_s`` (a capture whose clock jumps by years) is waited out
as ``max_gap_s``; the records keep their own timestamps.

A cluster that stops answering mid-run is waited for, up to ``outage_s``:
the producer retries what it has sent (idempotently, so nothing is written
twice), a new record waits for room in the send buffer, and a
``BrokerWatch`` logs when Kafka stops and starts answering. aiokafka has one
timeout for a request and for a batch's whole life (a batch whose partition
has no leader when it is that old fails, as after a restart of the whole
cluster), so the producer's request timeout is ``outage_s``. Only an outage
longer than that ends the run, with a PublishError.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError

from producers.exceptions import PublishError
from streams.admin import wait_for_broker
from streams.brokerwatch import BrokerWatch, quiet_repeated_logs
from streams.schemas import FlowRecord

FLUSH_EVERY = 5_000
PROGRESS_EVERY_S = 0.5


@dataclass
class PublishSummary:
    """What a run published, with per-link totals so callers can check them."""

    records: int = 0
    bytes: int = 0
    packets: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    elapsed_s: float = 0.0
    per_link: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # bytes, packets, flows

    def count(self, record: FlowRecord) -> None:
        self.records += 1
        self.bytes += record.bytes
        self.packets += record.packets
        if self.first_ts is None:
            self.first_ts = record.ts
        if self.last_ts is None or record.ts > self.last_ts:
            self.last_ts = record.ts
        b, p, f = self.per_link.get(record.link, (0, 0, 0))
        self.per_link[record.link] = (b + record.bytes, p + record.packets, f + 1)

    @property
    def records_per_s(self) -> float:
        return self.records / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def line(self) -> str:
        span = (self.last_ts or 0.0) - (self.first_ts or 0.0)
        return (
            f"published {self.records} records ({self.bytes} bytes, {self.packets} packets) "
            f"over {len(self.per_link)} links, {span:.1f} s of event time, "
            f"in {self.elapsed_s:.1f} s "
            f"({self.records_per_s:.0f} records/s)"
        )


async def publish(
    records: Iterable[FlowRecord],
    *,
    bootstrap: str,
    topic: str,
    speed: float | None,
    timeout_s: float = 30.0,
    max_gap_s: float = 10.0,
    outage_s: float = 300.0,
    on_progress: Callable[[PublishSummary], None] | None = None,
) -> PublishSummary:
    """Publish ``records`` (in event-time order) and wait until Kafka has them all.

    ``timeout_s`` bounds the wait for the cluster at the start; ``outage_s`` how
    long a cluster that stops answering later is waited for.
    """
    if speed is not None and not speed > 0:
        raise ValueError(f"speed must be positive, got {speed}")
    await wait_for_broker(bootstrap, timeout_s)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=int(max(timeout_s, outage_s) * 1000),
    )
    await producer.start()
    quiet_repeated_logs()
    watch = asyncio.create_task(BrokerWatch(bootstrap).run())
    summary = PublishSummary()
    started = time.monotonic()
    next_progress = started + PROGRESS_EVERY_S
    replay_s = 0.0  # capture time elapsed so far, with long gaps shortened to max_gap_s
    pending: list[asyncio.Future[object]] = []
    try:
        for record in records:
            if speed is not None and summary.last_ts is not None:
                replay_s += min(max(0.0, record.ts - summary.last_ts), max_gap_s)
                delay = started + replay_s / speed - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            pending.append(await _send(producer, topic, record, outage_s))
            summary.count(record)
            if len(pending) >= FLUSH_EVERY:
                await _settle(pending)
            if on_progress is not None and summary.records % 256 == 0:
                now = time.monotonic()
                if now >= next_progress:
                    summary.elapsed_s = now - started
                    on_progress(summary)
                    next_progress = now + PROGRESS_EVERY_S
        await _settle(pending)
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
        await producer.stop()
    summary.elapsed_s = time.monotonic() - started
    return summary


async def _send(
    producer: AIOKafkaProducer, topic: str, record: FlowRecord, outage_s: float
) -> "asyncio.Future[object]":
    """Hand one record to the producer. Its buffer for the record's partition takes a
    batch at a time; while Kafka is away the call waits, up to ``outage_s``."""
    try:
        future: asyncio.Future[object] = await producer.send(
            topic,
            value=record.model_dump_json(exclude_none=True).encode(),
            key=record.link.encode(),
            timestamp_ms=round(record.ts * 1000),  # event time, as the contract says
        )
    except KafkaTimeoutError:
        raise PublishError(
            f"Kafka has taken no record for {outage_s:g} s (LINKCAST_BROKER_OUTAGE_S); "
            f"stopped at the record of {record.link} at event time {record.ts:.6f}: "
            "start the cluster and publish again from there"
        ) from None
    return future


async def _settle(pending: list["asyncio.Future[object]"]) -> None:
    """Wait for every send in ``pending`` to be acknowledged; raise if any failed."""
    results = await asyncio.gather(*pending, return_exceptions=True)
    pending.clear()
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise PublishError(
            f"{len(failures)} records were not acknowledged by Kafka: {failures[0]!r}"
        )

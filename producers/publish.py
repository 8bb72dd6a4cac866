"""Publishing flow records to Kafka, paced in event time or as fast as the broker takes them.

Each record goes to the flows topic keyed by its link id, with its event time
as the Kafka message timestamp. ``speed`` divides the gaps between event times:
1.0 replays in real time, 10.0 ten times faster, None publishes at once. A gap
longer than ``max_gap_s`` (a capture whose clock jumps by years) is waited out
as ``max_gap_s``; the records keep their own timestamps.
"""

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer

from producers.exceptions import PublishError
from streams.admin import wait_for_broker
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
    on_progress: Callable[[PublishSummary], None] | None = None,
) -> PublishSummary:
    """Publish ``records`` (in event-time order) and wait until Kafka has them all."""
    if speed is not None and not speed > 0:
        raise ValueError(f"speed must be positive, got {speed}")
    await wait_for_broker(bootstrap, timeout_s)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=int(timeout_s * 1000),
    )
    await producer.start()
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
            value = record.model_dump_json(exclude_none=True).encode()
            pending.append(
                await producer.send(
                    topic,
                    value=value,
                    key=record.link.encode(),
                    timestamp_ms=round(record.ts * 1000),  # event time, as the contract says
                )
            )
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
        await producer.stop()
    summary.elapsed_s = time.monotonic() - started
    return summary


async def _settle(pending: list["asyncio.Future[object]"]) -> None:
    """Wait for every send in ``pending`` to be acknowledged; raise if any failed."""
    results = await asyncio.gather(*pending, return_exceptions=True)
    pending.clear()
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise PublishError(
            f"{len(failures)} records were not acknowledged by Kafka: {failures[0]!r}"
        )

"""What the worker does with each message, without Faust or Kafka.

The Faust agent (streams.app) hands every message of the flows and ticks
topics to a LinkProcessor and sends what comes back. State goes through
``store``, a mapping from link id to a JSON-ready snapshot: the Faust table in
the worker, a plain dict in unit tests.

Silent links. A link that gets no records still closes its bins, from the
ticks the worker sends itself every ``tick_interval_s`` (one per partition).
On a tick, a link that has had no record for ``idle_close_after_s`` of
processing time has its watermark advanced to the partition's event clock
minus the lateness. The partition's event clock is the largest event time seen
on the partition, plus the processing time that has passed since its last
record. While the partition is busy (a backlog, a fast replay) the clock is
plain event time, so the bins that close, and what they hold, do not depend on
the replay speed; once the partition is quiet the clock runs with the wall
clock and the last bins close.
"""

import base64
import logging
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from streams.bins import BinConfig, ClosedBin, LateRecordError, LinkBins, to_us
from streams.decode import Rejection, decode_flow
from streams.schemas import DeadLetter, FlowRecord, LinkState, RejectReason, WindowRecord

log = logging.getLogger(__name__)


@dataclass
class Outputs:
    """Messages to publish, as (key, value) pairs of bytes, per output topic."""

    windows: list[tuple[bytes, bytes, float]] = field(default_factory=list)  # + event time
    link_states: list[tuple[bytes, bytes, float]] = field(default_factory=list)
    deadletters: list[tuple[bytes | None, bytes, RejectReason]] = field(default_factory=list)
    bins_closed: int = 0
    duplicates: int = 0


@dataclass
class _Link:
    bins: LinkBins
    partition: int
    last_offset: int = -1
    last_wall_s: float = 0.0


@dataclass
class _PartitionClock:
    max_ts_us: int | None
    last_wall_s: float


class LinkProcessor:
    """Per-link bins for the partitions this worker owns."""

    def __init__(
        self,
        config: BinConfig,
        store: MutableMapping[str, Any],
        *,
        source_topic: str,
        idle_close_after_s: float,
    ) -> None:
        self.config = config
        self.store = store
        self.source_topic = source_topic
        self.idle_close_after_s = idle_close_after_s
        self._links: dict[str, _Link] = {}
        self._by_partition: dict[int, set[str]] = {}
        self._clocks: dict[int, _PartitionClock] = {}

    @property
    def links_tracked(self) -> int:
        return len(self._links)

    def forget_partitions(self) -> None:
        """Drop everything cached; call when partitions are revoked (state reloads from store)."""
        self._links.clear()
        self._by_partition.clear()
        self._clocks.clear()

    # ---- messages ------------------------------------------------------

    def on_flow(
        self,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int,
        offset: int,
        timestamp_ms: int | None,
        now_s: float,
    ) -> Outputs:
        """Validate one flows message, count it, and return what to publish."""
        out = Outputs()
        decoded = decode_flow(key, value)
        if isinstance(decoded, Rejection):
            out.deadletters.append(
                self._dead_letter(key, value, decoded, partition, offset, timestamp_ms, now_s)
            )
            return out
        record: FlowRecord = decoded
        clock = self._clock(partition, now_s)
        link = self._link(record.link, partition, now_s)
        if offset <= link.last_offset:
            out.duplicates += 1  # redelivered after a restart; already in the stored state
            return out
        link.last_offset = offset
        try:
            closed = link.bins.add(record.ts, record.bytes, record.packets, 1, arrival_s=now_s)
        except LateRecordError:
            watermark = (link.bins.watermark_us or 0) / 1e6
            late = Rejection(
                RejectReason.LATE,
                f"event time {record.ts} is in a bin that closed when the watermark reached "
                f"{watermark}; raise LINKCAST_LATENESS_S to accept records this late",
            )
            out.deadletters.append(
                self._dead_letter(key, value, late, partition, offset, timestamp_ms, now_s)
            )
            closed = []
        link.last_wall_s = now_s
        ts_us = link.bins.max_ts_us
        if ts_us is not None and (clock.max_ts_us is None or ts_us > clock.max_ts_us):
            clock.max_ts_us = ts_us
        clock.last_wall_s = now_s
        self._emit(record.link, link, closed, now_s, out)
        self.store[record.link] = self._snapshot(link)
        return out

    def on_tick(self, partition: int, now_s: float) -> Outputs:
        """Close the bins of links that have been silent, from the processing-time clock."""
        out = Outputs()
        clock = self._clock(partition, now_s)
        if clock.max_ts_us is None:
            return out
        event_clock_us = clock.max_ts_us + max(0, to_us(now_s - clock.last_wall_s))
        watermark_us = event_clock_us - self.config.lateness_us
        for name in sorted(self._by_partition.get(partition, ())):
            link = self._links[name]
            if now_s - link.last_wall_s < self.idle_close_after_s:
                continue
            closed = link.bins.advance_us(watermark_us)
            if closed:
                self._emit(name, link, closed, now_s, out)
                self.store[name] = self._snapshot(link)
        return out

    # ---- state ---------------------------------------------------------

    def _clock(self, partition: int, now_s: float) -> _PartitionClock:
        clock = self._clocks.get(partition)
        if clock is None:
            self._load_partition(partition, now_s)
            known = [self._links[n].bins.max_ts_us for n in self._by_partition.get(partition, ())]
            stamps = [t for t in known if t is not None]
            clock = self._clocks[partition] = _PartitionClock(max(stamps, default=None), now_s)
        return clock

    def _load_partition(self, partition: int, now_s: float) -> None:
        """Cache every stored link of ``partition`` (once per assignment)."""
        for name, snapshot in list(self.store.items()):
            if name in self._links or snapshot.get("partition") != partition:
                continue
            self._restore(name, snapshot, now_s)

    def _link(self, name: str, partition: int, now_s: float) -> _Link:
        link = self._links.get(name)
        if link is not None:
            return link
        snapshot = self.store.get(name)
        restored = self._restore(name, snapshot, now_s) if snapshot is not None else None
        if restored is not None:
            return restored
        link = self._links[name] = _Link(LinkBins(self.config), partition, -1, now_s)
        self._by_partition.setdefault(partition, set()).add(name)
        return link

    def _restore(self, name: str, snapshot: dict[str, Any], now_s: float) -> _Link | None:
        try:
            bins = LinkBins.from_dict(snapshot["bins"], self.config)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("starting link %s afresh: its stored state is unusable (%s)", name, exc)
            return None
        partition = int(snapshot["partition"])
        link = self._links[name] = _Link(bins, partition, int(snapshot["last_offset"]), now_s)
        self._by_partition.setdefault(partition, set()).add(name)
        return link

    @staticmethod
    def _snapshot(link: _Link) -> dict[str, Any]:
        return {
            "bins": link.bins.to_dict(),
            "partition": link.partition,
            "last_offset": link.last_offset,
        }

    # ---- outputs -------------------------------------------------------

    def _emit(
        self, name: str, link: _Link, closed: list[ClosedBin], now_s: float, out: Outputs
    ) -> None:
        if not closed:
            return
        key = name.encode()
        bin_s = self.config.bin_s
        last: WindowRecord | None = None
        for b in closed:
            last = WindowRecord(
                link=name,
                bin_start_s=b.start_s,
                bin_end_s=b.end_s,
                bytes=b.bytes,
                packets=b.packets,
                flows=b.flows,
                bps=b.bytes * 8 / bin_s,
                window_start_s=b.window_start_s,
                window_bins=b.window_bins,
                window_bytes=b.window_bytes,
                window_packets=b.window_packets,
                window_flows=b.window_flows,
                window_bps=b.window_bytes * 8 / (b.window_bins * bin_s),
                emitted_at_s=now_s,
                latency_s=None if b.last_arrival_s is None else max(0.0, now_s - b.last_arrival_s),
            )
            out.windows.append((key, last.model_dump_json().encode(), b.end_s))
        out.bins_closed += len(closed)
        bins = link.bins
        state = LinkState(
            link=name,
            event_time_s=(bins.max_ts_us or 0) / 1e6,
            watermark_s=(bins.watermark_us or 0) / 1e6,
            bins_closed=bins.bins_closed,
            total_bytes=bins.total_bytes,
            total_packets=bins.total_packets,
            total_flows=bins.total_flows,
            late_records=bins.late_records,
            last_window=last,
            updated_at_s=now_s,
        )
        out.link_states.append((key, state.model_dump_json().encode(), closed[-1].end_s))

    def _dead_letter(
        self,
        key: bytes | None,
        value: bytes | None,
        rejection: Rejection,
        partition: int,
        offset: int,
        timestamp_ms: int | None,
        now_s: float,
    ) -> tuple[bytes | None, bytes, RejectReason]:
        letter = DeadLetter(
            reason=rejection.reason,
            detail=rejection.detail,
            topic=self.source_topic,
            partition=partition,
            offset=offset,
            timestamp_ms=timestamp_ms,
            key_b64=None if key is None else base64.b64encode(key).decode(),
            raw_b64=base64.b64encode(value or b"").decode(),
            rejected_at_s=now_s,
        )
        return key, letter.model_dump_json().encode(), rejection.reason

"""Per-link event-time bins, watermark and sliding window: pure, no I/O.

Time is kept in integer microseconds so that bin boundaries are exact
(``0.3 / 0.1`` is 2.9999999999999996 in floats; 300000 // 100000 is 3).

Contract, for one link with bin width B, lateness L and window W:

* A record at event time t belongs to bin ``floor(t / B)``, the half-open
  interval ``[k*B, (k+1)*B)``.
* The watermark is the largest event time seen minus L, or further when the
  idle timer advances it (``advance``). It never moves back.
* A bin closes when the watermark reaches its end (``end <= watermark``).
  Bins close in order, each exactly once; a bin with no records closes with
  zero traffic.
* A record whose bin has already closed is late: ``is_late`` says so, ``add``
  refuses it, and the caller counts and dead-letters it.
* After W consecutive empty bins the window holds only zeros; further empty
  bins are skipped (not emitted) until traffic resumes, so a link silent for a
  day, or a clock jump of years, costs nothing.
"""

from collections import deque
from dataclasses import dataclass, field
from typing import Any

US_PER_S = 1_000_000


def to_us(seconds: float) -> int:
    """Seconds to integer microseconds, rounding to the nearest microsecond."""
    return round(seconds * US_PER_S)


@dataclass(frozen=True, slots=True)
class BinConfig:
    """Bin width, lateness and window length, in the units the maths uses."""

    bin_us: int
    lateness_us: int
    window_bins: int

    @classmethod
    def of(cls, bin_s: float, lateness_s: float, window_bins: int) -> "BinConfig":
        bin_us = to_us(bin_s)
        if bin_us <= 0:
            raise ValueError(f"bin width must be at least 1 microsecond, got {bin_s} s")
        if window_bins < 1:
            raise ValueError(f"a window needs at least one bin, got {window_bins}")
        return cls(bin_us, to_us(lateness_s), window_bins)

    @property
    def bin_s(self) -> float:
        return self.bin_us / US_PER_S


@dataclass(slots=True)  # not frozen: that made each one take three times as long to build
class ClosedBin:
    """One closed bin and the window ending with it (read only: never changed once made)."""

    index: int
    start_s: float
    end_s: float
    bytes: int
    packets: int
    flows: int
    window_start_s: float
    window_bins: int
    window_bytes: int
    window_packets: int
    window_flows: int
    last_arrival_s: float | None  # processing time of the bin's last record; None if empty
    class_mix: dict[str, tuple[int, int]] = field(default_factory=dict)  # class -> (bytes, flows)


@dataclass(slots=True)
class _Acc:
    bytes: int = 0
    packets: int = 0
    flows: int = 0
    last_arrival_s: float = 0.0
    classes: dict[str, list[int]] = field(default_factory=dict)  # class -> [bytes, flows]


class LateRecordError(ValueError):
    """``add`` was given a record whose bin has already closed."""


@dataclass
class LinkBins:
    """The bins, watermark, window and totals of one link."""

    config: BinConfig
    max_ts_us: int | None = None
    watermark_us: int | None = None
    next_index: int | None = None  # lowest bin not yet closed
    open: dict[int, _Acc] = field(default_factory=dict)
    window: deque[tuple[int, int, int]] = field(default_factory=deque)
    empty_run: int = 0
    bins_closed: int = 0
    total_bytes: int = 0
    total_packets: int = 0
    total_flows: int = 0
    late_records: int = 0
    # (bytes, packets, flows) summed over ``window``, kept as bins come and go (not stored)
    _sums: list[int] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def empty(
        cls, bin_s: float = 1.0, lateness_s: float = 2.0, window_bins: int = 10
    ) -> "LinkBins":
        return cls(BinConfig.of(bin_s, lateness_s, window_bins))

    # ---- queries -------------------------------------------------------

    def is_late(self, ts_s: float) -> bool:
        """True if the bin of ``ts_s`` has already closed."""
        if self.watermark_us is None:
            return False
        index = to_us(ts_s) // self.config.bin_us
        return (index + 1) * self.config.bin_us <= self.watermark_us

    @property
    def window_sums(self) -> tuple[int, int, int]:
        """(bytes, packets, flows) over the current window."""
        sums = self._window_sums()
        return sums[0], sums[1], sums[2]

    def _window_sums(self) -> list[int]:
        if self._sums is None:
            self._sums = [
                sum(b for b, _, _ in self.window),
                sum(p for _, p, _ in self.window),
                sum(f for _, _, f in self.window),
            ]
        return self._sums

    # ---- updates -------------------------------------------------------

    def add(
        self,
        ts_s: float,
        bytes: int,
        packets: int = 1,
        flows: int = 1,
        arrival_s: float = 0.0,
        cls: str | None = None,
    ) -> list[ClosedBin]:
        """Count a record and return the bins its watermark closes, oldest first.

        ``cls``, the record's traffic class where known, adds its bytes and
        flows to the bin's class mix.

        Raises LateRecordError if the record's bin has closed (and counts it in
        ``late_records``); the caller dead-letters the record.
        """
        return self.add_us(to_us(ts_s), bytes, packets, flows, arrival_s, cls)

    def add_us(
        self,
        ts_us: int,
        bytes: int,
        packets: int = 1,
        flows: int = 1,
        arrival_s: float = 0.0,
        cls: str | None = None,
    ) -> list[ClosedBin]:
        """``add`` with the event time in microseconds (the worker converts a batch's at once).

        The path of every record, so written out: no call unless the watermark passes
        the end of the lowest open bin.
        """
        bin_us = self.config.bin_us
        index = ts_us // bin_us
        watermark = self.watermark_us
        if watermark is not None and (index + 1) * bin_us <= watermark:
            self.late_records += 1
            raise LateRecordError(f"event time {ts_us / US_PER_S} is in a closed bin")
        acc = self.open.get(index)
        if acc is None:
            acc = self.open[index] = _Acc()
        acc.bytes += bytes
        acc.packets += packets
        acc.flows += flows
        if arrival_s > acc.last_arrival_s:
            acc.last_arrival_s = arrival_s
        if cls is not None:
            mix = acc.classes.get(cls)
            if mix is None:
                mix = acc.classes[cls] = [0, 0]
            mix[0] += bytes
            mix[1] += flows
        if self.next_index is None or index < self.next_index:
            self.next_index = index
        if self.max_ts_us is None or ts_us > self.max_ts_us:
            self.max_ts_us = ts_us
        moved_to = ts_us - self.config.lateness_us
        if watermark is not None and moved_to <= watermark:
            return []
        if moved_to // bin_us <= self.next_index:  # no bin ends at or before it
            self.watermark_us = moved_to
            return []
        return self.advance_us(moved_to)

    def advance(self, watermark_s: float) -> list[ClosedBin]:
        """Move the watermark forward to ``watermark_s`` (never back); return closed bins."""
        return self.advance_us(to_us(watermark_s))

    def advance_us(self, watermark_us: int) -> list[ClosedBin]:
        if self.watermark_us is not None and watermark_us <= self.watermark_us:
            return []
        self.watermark_us = watermark_us
        if self.next_index is None:
            return []
        # Bins with index < limit end at or before the watermark.
        limit = watermark_us // self.config.bin_us
        closed: list[ClosedBin] = []
        index = self.next_index
        while index < limit:
            acc = self.open.pop(index, None)
            if acc is None:
                if self.empty_run >= self.config.window_bins:
                    # The window is all zeros and stays so: jump to the next bin with data.
                    index = min([limit, *(i for i in self.open if i > index)])
                    continue
                self.empty_run += 1
                closed.append(self._close(index, 0, 0, 0, None))
            else:
                self.empty_run = 0
                closed.append(
                    self._close(
                        index, acc.bytes, acc.packets, acc.flows, acc.last_arrival_s, acc.classes
                    )
                )
            index += 1
        self.next_index = index
        return closed

    def _close(
        self,
        index: int,
        bytes: int,
        packets: int,
        flows: int,
        last_arrival_s: float | None,
        classes: dict[str, list[int]] | None = None,
    ) -> ClosedBin:
        cfg = self.config
        sums = self._window_sums()  # before the window changes
        self.window.append((bytes, packets, flows))
        sums[0] += bytes
        sums[1] += packets
        sums[2] += flows
        if len(self.window) > cfg.window_bins:
            gone = self.window.popleft()
            sums[0] -= gone[0]
            sums[1] -= gone[1]
            sums[2] -= gone[2]
        self.bins_closed += 1
        self.total_bytes += bytes
        self.total_packets += packets
        self.total_flows += flows
        w_bytes, w_packets, w_flows = sums
        filled = len(self.window)
        return ClosedBin(
            index=index,
            start_s=index * cfg.bin_us / US_PER_S,
            end_s=(index + 1) * cfg.bin_us / US_PER_S,
            bytes=bytes,
            packets=packets,
            flows=flows,
            window_start_s=(index + 1 - filled) * cfg.bin_us / US_PER_S,
            window_bins=filled,
            window_bytes=w_bytes,
            window_packets=w_packets,
            window_flows=w_flows,
            last_arrival_s=last_arrival_s,
            class_mix={c: (b, f) for c, (b, f) in sorted((classes or {}).items())},
        )

    # ---- persistence ---------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready snapshot, for the worker's table (and its changelog). It shares the
        open bins' class counts: encode it before the bins change."""
        cfg = self.config
        return {
            "bin_us": cfg.bin_us,
            "lateness_us": cfg.lateness_us,
            "window_bins": cfg.window_bins,
            "max_ts_us": self.max_ts_us,
            "watermark_us": self.watermark_us,
            "next_index": self.next_index,
            "open": [
                # the live class counts, not copies: encode the snapshot before more
                # records come (the processor does, at the drain)
                [i, a.bytes, a.packets, a.flows, a.last_arrival_s, a.classes]
                for i, a in self.open.items()
            ],
            "window": list(self.window),  # (bytes, packets, flows) tuples, lists in JSON
            "empty_run": self.empty_run,
            "bins_closed": self.bins_closed,
            "total_bytes": self.total_bytes,
            "total_packets": self.total_packets,
            "total_flows": self.total_flows,
            "late_records": self.late_records,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], config: BinConfig) -> "LinkBins":
        """Restore a snapshot made with the same ``config``.

        Raises ValueError if the snapshot was made with other bin settings:
        its bins would not line up with the new ones.
        """
        made_with = BinConfig(data["bin_us"], data["lateness_us"], data["window_bins"])
        if made_with != config:
            raise ValueError(f"state was made with {made_with}, settings now give {config}")
        return cls(
            config=config,
            max_ts_us=data["max_ts_us"],
            watermark_us=data["watermark_us"],
            next_index=data["next_index"],
            open={o[0]: _Acc(o[1], o[2], o[3], o[4], _classes(o)) for o in data["open"]},
            window=deque((b, p, f) for b, p, f in data["window"]),
            empty_run=data["empty_run"],
            bins_closed=data["bins_closed"],
            total_bytes=data["total_bytes"],
            total_packets=data["total_packets"],
            total_flows=data["total_flows"],
            late_records=data["late_records"],
        )


def _classes(open_entry: list[Any]) -> dict[str, list[int]]:
    """The class mix of a stored open bin (snapshots before the class mix have none)."""
    if len(open_entry) < 6:
        return {}
    return {str(c): [int(b), int(f)] for c, (b, f) in open_entry[5].items()}

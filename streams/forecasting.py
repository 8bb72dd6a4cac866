"""Per-link bin history and batched forecasts on bin close: pure, no Faust or Kafka.

Every closed bin of a link is appended to that link's history (the last
``window_bins`` bins the forecaster reads; bins the bin code skips during a
long silence are added back as zeros). Each closed bin whose link has a full
history gets a forecast; all the bins that closed since the worker's last
drain (records, and ticks for many silent links) are forecast in one model
call. Forecasts follow event time only, so a replay at any speed, into any
number of partitions, gives the same forecasts.
"""

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from streams.bins import ClosedBin
from streams.exceptions import HorizonsUnavailableError
from streams.records import forecast
from streams.schemas import TrafficClass

CLASS_ORDER: tuple[str, ...] = tuple(c.value for c in TrafficClass)
#: A history row: one bin's start (s), bytes, packets, flows, then bytes per class.
COLUMNS: tuple[str, ...] = ("start_s", "bytes", "packets", "flows", *CLASS_ORDER)
_CLASS_COLUMN = {c: 4 + k for k, c in enumerate(CLASS_ORDER)}
_NO_CLASS_BYTES = (0,) * len(CLASS_ORDER)
#: One bin as ``History.points`` gives it: start (s), bytes, packets, flows, bytes per class.
Point = tuple[float, int, int, int, tuple[int, ...]]


class BandwidthForecaster(Protocol):
    """What the worker needs of a forecaster (``models.runtime.Forecaster`` is one)."""

    version: str
    window_bins: int
    horizons: tuple[int, ...]

    def forecast(
        self, bps: np.ndarray, bin_start_s: np.ndarray, bin_s: float, **counts: np.ndarray | None
    ) -> np.ndarray: ...


class SelectedHorizons:
    """A forecaster that gives only some of its model's horizons.

    The model still computes all of them in its one call; the others are dropped
    before anything is published or scored. Everything else is the model's.
    """

    def __init__(self, model: BandwidthForecaster, keep: list[int]) -> None:
        self.model = model
        self.keep = keep  # indices into model.horizons, in order
        self.version = model.version
        self.window_bins = model.window_bins
        self.horizons = tuple(model.horizons[k] for k in keep)

    def forecast(
        self, bps: np.ndarray, bin_start_s: np.ndarray, bin_s: float, **counts: np.ndarray | None
    ) -> np.ndarray:
        return self.model.forecast(bps, bin_start_s, bin_s, **counts)[:, self.keep]

    def __getattr__(self, name: str) -> Any:  # the model's metrics, and the rest
        return getattr(self.model, name)


def select_horizons(
    model: BandwidthForecaster, horizons_s: tuple[float, ...] | None, bin_s: float
) -> BandwidthForecaster:
    """``model`` giving only the horizons ``horizons_s`` (seconds ahead; None: all).

    Raises HorizonsUnavailableError, naming the horizons the model has, when one
    of ``horizons_s`` is not a horizon of the model at this bin width.
    """
    if horizons_s is None:
        return model
    offered_s = [h * bin_s for h in model.horizons]
    keep = [_index_of(h, offered_s) for h in horizons_s]
    missing = [h for h, k in zip(horizons_s, keep, strict=True) if k is None]
    if missing:
        raise HorizonsUnavailableError(model.version, offered_s, missing)
    return SelectedHorizons(model, [k for k in keep if k is not None])


def _index_of(horizon_s: float, offered_s: list[float]) -> int | None:
    for k, offered in enumerate(offered_s):
        if abs(offered - horizon_s) < 1e-9 * max(1.0, offered):
            return k
    return None


@dataclass(eq=False)  # an array field: compare ``points`` instead
class History:
    """The last ``size`` closed bins of one link, oldest first, as rows of ``COLUMNS``.

    The rows live in one numpy array, so a forecast takes a link's history with
    one copy and a round stacks every due link's in one call. Built from tuples
    per forecast instead, the arrays took about 12 % of the worker's time in a
    py-spy profile of ``linkcast soak`` (10,000 links, each closing a bin a
    second).
    """

    size: int
    rows: np.ndarray = field(init=False, repr=False)
    count: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.rows = np.zeros((self.size, len(COLUMNS)), dtype=np.float64)

    def resize(self, size: int) -> None:
        """Keep the last ``size`` bins (a forecaster with another window was loaded)."""
        if size == self.size:
            return
        kept = self.rows[self.size - min(self.count, size) :]
        self.size, self.count = size, len(kept)
        self.rows = np.zeros((size, len(COLUMNS)), dtype=np.float64)
        if len(kept):
            self.rows[size - len(kept) :] = kept

    def add(self, closed: ClosedBin, bin_s: float) -> None:
        if self.size == 0:
            return
        if self.count:
            gap = min(round((closed.start_s - self.rows[-1, 0]) / bin_s) - 1, self.size - 1)
            if gap > 0:  # bins skipped in a silence were empty
                self._shift(gap)
                self.rows[-gap:] = 0.0
                self.rows[-gap:, 0] = closed.start_s - bin_s * np.arange(gap, 0, -1)
        self._shift(1)
        # the row built as a list and written in one assignment: one numpy call, not three
        row = [closed.start_s, closed.bytes, closed.packets, closed.flows, *_NO_CLASS_BYTES]
        for cls, (class_bytes, _) in closed.class_mix.items():
            row[_CLASS_COLUMN[cls]] = class_bytes
        self.rows[-1] = row

    def _shift(self, n: int) -> None:
        """Make room for ``n`` rows at the end, dropping the oldest."""
        self.rows[:-n] = self.rows[n:]
        self.count = min(self.count + n, self.size)

    @property
    def full(self) -> bool:
        return self.size > 0 and self.count == self.size

    @property
    def points(self) -> list[Point]:
        """The bins as tuples, oldest first."""
        return [
            (r[0], int(r[1]), int(r[2]), int(r[3]), tuple(int(v) for v in r[4:]))
            for r in self.rows[self.size - self.count :].tolist()
        ]

    def window(self) -> np.ndarray:
        """A copy of the rows (the history goes on changing; a forecast's must not)."""
        return self.rows[self.size - self.count :].copy()

    def to_stored(self) -> np.ndarray | dict[str, np.ndarray]:
        """The rows, oldest first, for the store: the array itself, or, when some bins had
        no traffic, every start and only the rows with traffic.

        Most rows of a quiet link are empty, and stored whole they made most of its
        state (60 rows of 11 numbers, about 3.6 KB of JSON; 1.1 KB this way, in the same
        9 us). ``records.to_json`` writes arrays as ``tolist`` would, without the lists
        (converting took about 3 % of ``bench processor --link-rate 1`` under cProfile).
        """
        rows = self.rows[self.size - self.count :]
        if not self.count:
            return rows  # a new link's: the checks below took 2.4 us a snapshot
        busy = rows[:, 1:].any(axis=1)
        if busy.all():
            return rows
        return {
            "starts": np.ascontiguousarray(rows[:, 0]),
            "busy": np.flatnonzero(busy),
            "rows": np.ascontiguousarray(rows[busy, 1:]),
        }

    @classmethod
    def from_stored(cls, size: int, data: list[list[Any]] | dict[str, Any] | None) -> "History":
        """From ``to_stored``, or from the rows of an older linkcast: (start, bytes, packets,
        flows, [bytes per class])."""
        history = cls(size)
        if not size or not data:
            return history
        if isinstance(data, dict):
            array = _whole_rows(data)[-size:]
        else:
            array = np.asarray(
                [
                    [*row[:4], *row[4]] if len(row) == 5 and isinstance(row[4], list) else row
                    for row in data[-size:]
                ],
                dtype=np.float64,
            )
        if array.ndim != 2 or array.shape[1] != len(COLUMNS):
            raise ValueError(f"history rows of {array.shape[-1]} values, not {len(COLUMNS)}")
        history.rows[size - len(array) :] = array
        history.count = len(array)
        return history


def _whole_rows(stored: dict[str, Any]) -> np.ndarray:
    """``History.to_stored``'s starts and rows with traffic, as whole rows."""
    rows = np.zeros((len(stored["starts"]), len(COLUMNS)), dtype=np.float64)
    rows[:, 0] = stored["starts"]
    if len(stored["busy"]):
        rows[stored["busy"], 1:] = stored["rows"]
    return rows


@dataclass(slots=True, eq=False)  # one per forecast: not frozen, which is slower to build
class Due:
    """A link whose bin just closed, with its history up to and including that bin."""

    link: str
    index: int  # the bin's index (its start over the bin width)
    rows: np.ndarray  # the history's rows (``COLUMNS``), oldest first
    closed_at_s: float  # processing time the bin closed


#: A forecast to score later: (target bin index, (horizon s, lower, median, upper)).
Expected = tuple[int, tuple[float, float, float, float]]


def forecast_due(
    forecaster: BandwidthForecaster, due: list[Due], bin_s: float
) -> tuple[list[tuple[bytes, bytes]], list[list[Expected]]]:
    """One model call for every due window: the Forecast messages to publish (keyed by
    link), and per due window its forecasts with the bin each targets, to be scored when
    that bin closes. A window the model answered with a negative or non-finite bandwidth
    gets no message and no forecasts (an empty list): JSON has no infinity, and the
    Forecast model refuses negatives."""
    if not due:
        return [], []
    arrays = np.stack([d.rows for d in due])
    # to the thousandth of a bit/s, more than the model's float32 knows: each forecast
    # waits in its link's stored state until scored, and full doubles made that the
    # largest part of it
    out: np.ndarray = np.round(
        forecaster.forecast(
            arrays[:, :, 1] * 8.0 / bin_s,
            arrays[:, :, 0],
            bin_s,
            packets=arrays[:, :, 2],
            flows=arrays[:, :, 3],
            class_bytes=arrays[:, :, 4:],
        ),
        3,
    )
    out += 0.0  # no -0.0 from rounding a tiny negative
    usable = (np.isfinite(out) & (out >= 0)).all(axis=(1, 2)).tolist()
    made_at = (arrays[:, -1, 0] + bin_s).tolist()
    done_s = time.time()
    horizons = forecaster.horizons
    horizons_s = [h * bin_s for h in horizons]
    version = forecaster.version
    messages: list[tuple[bytes, bytes]] = []
    expected: list[list[Expected]] = []
    for d, rows, ok, made_at_s in zip(due, out.tolist(), usable, made_at, strict=True):
        if not ok:
            expected.append([])
            continue
        forecasts = [
            (h_s, lo, mid, hi) for h_s, (lo, mid, hi) in zip(horizons_s, rows, strict=True)
        ]
        expected.append([(d.index + h, f) for h, f in zip(horizons, forecasts, strict=True)])
        latency_s = max(0.0, done_s - d.closed_at_s)
        messages.append(
            (d.link.encode(), forecast(d.link, made_at_s, forecasts, version, latency_s))
        )
    return messages, expected

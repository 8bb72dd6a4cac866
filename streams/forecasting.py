"""Per-link bin history and batched forecasts on bin close: pure, no Faust or Kafka.

Every closed bin of a link is appended to that link's history (the last
``window_bins`` bins the forecaster reads; bins the bin code skips during a
long silence are added back as zeros). Each closed bin whose link has a full
history gets a forecast; all the bins that closed while handling one message
(one record, or one tick for many silent links) are forecast in one model
call. Forecasts follow event time only, so a replay at any speed, into any
number of partitions, gives the same forecasts.
"""

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from streams.bins import ClosedBin
from streams.exceptions import HorizonsUnavailableError
from streams.schemas import Forecast, HorizonForecast, TrafficClass

CLASS_ORDER: tuple[str, ...] = tuple(c.value for c in TrafficClass)
#: One bin as the history keeps it: start (s), bytes, packets, flows, bytes per class.
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


@dataclass
class History:
    """The last ``size`` closed bins of one link, oldest first."""

    size: int
    points: deque[Point] = field(default_factory=deque)

    def add(self, closed: ClosedBin, bin_s: float) -> None:
        if self.points:
            gap = round((closed.start_s - self.points[-1][0]) / bin_s) - 1
            for k in range(min(gap, self.size)):  # bins skipped in a silence were empty
                start = closed.start_s - (min(gap, self.size) - k) * bin_s
                self._push((start, 0, 0, 0, (0,) * len(CLASS_ORDER)))
        mix = tuple(closed.class_mix.get(c, (0, 0))[0] for c in CLASS_ORDER)
        self._push((closed.start_s, closed.bytes, closed.packets, closed.flows, mix))

    def _push(self, point: Point) -> None:
        self.points.append(point)
        while len(self.points) > self.size:
            self.points.popleft()

    @property
    def full(self) -> bool:
        return len(self.points) == self.size

    def to_list(self) -> list[Point]:
        """The points, oldest first, for the store (JSON writes each tuple as a list).

        The tuples themselves: copying each into lists, once per bin closed, took about
        4 % of the processor's time in a cProfile (200,000 records over 200 links).
        """
        return list(self.points)

    @classmethod
    def from_list(cls, size: int, data: list[list[Any]] | None) -> "History":
        history = cls(size)
        for s, b, p, f, m in data or []:
            history._push((float(s), int(b), int(p), int(f), tuple(int(v) for v in m)))
        return history


@dataclass(frozen=True)
class Due:
    """A link whose bin just closed, with its history up to and including that bin."""

    link: str
    index: int  # the bin's index (its start over the bin width)
    points: tuple[Point, ...]
    closed_at_s: float  # processing time the bin closed


#: A forecast to score later: (link, target bin index, (horizon s, lower, median, upper)).
Expected = tuple[str, int, tuple[float, float, float, float]]


def forecast_due(
    forecaster: BandwidthForecaster, due: list[Due], bin_s: float
) -> tuple[list[tuple[bytes, bytes]], list[Expected]]:
    """One model call for every due window: the Forecast messages to publish (keyed by
    link), and each forecast with the bin it targets, to be scored when that bin closes."""
    if not due:
        return [], []
    arrays = np.asarray([[p[:4] for p in d.points] for d in due], dtype=np.float64)
    mix = np.asarray([[p[4] for p in d.points] for d in due], dtype=np.float64)
    out = forecaster.forecast(
        arrays[:, :, 1] * 8.0 / bin_s,
        arrays[:, :, 0],
        bin_s,
        packets=arrays[:, :, 2],
        flows=arrays[:, :, 3],
        class_bytes=mix,
    )
    done_s = time.time()
    messages, expected = [], []
    for d, rows in zip(due, out.tolist(), strict=True):
        for h, (lo, mid, hi) in zip(forecaster.horizons, rows, strict=True):
            expected.append((d.link, d.index + h, (h * bin_s, lo, mid, hi)))
        record = Forecast(
            link=d.link,
            made_at_s=d.points[-1][0] + bin_s,
            horizons=[
                HorizonForecast(horizon_s=h * bin_s, lower_bps=lo, bps=mid, upper_bps=hi)
                for h, (lo, mid, hi) in zip(forecaster.horizons, rows, strict=True)
            ],
            model_version=forecaster.version,
            latency_s=max(0.0, done_s - d.closed_at_s),
        )
        messages.append((d.link.encode(), record.model_dump_json().encode()))
    return messages, expected

"""Forecast error tracking: each forecast is scored when the bin it forecast closes. Pure.

A forecast made at the close of bin ``k`` for horizon ``h`` bins targets bin
``k + h``. It waits, per link, until that bin closes; then its error against
the bin's actual bits per second updates the link's running figures for that
horizon: exponentially weighted (``ALPHA``) absolute error, actual level and
interval hits, so a model drifting away from the traffic shows within a few
dozen bins. Forecasts whose target bin the bin code skips (a long silence)
are scored against zero traffic when the next bin closes after their target.
"""

from dataclasses import dataclass, field
from typing import Any

ALPHA = 0.05  # weight of the newest scored forecast in the running figures
NEAR_BINS = 8  # bins since the last close below which their targets are looked up one by one

#: A waiting forecast: horizon (s), lower, median, upper (bits/s).
Waiting = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Score:
    """One scored forecast, for the metrics."""

    horizon_s: float
    abs_error_bps: float
    actual_bps: float
    inside: bool


@dataclass
class Running:
    """Running figures of one horizon."""

    scored: int = 0
    abs_error_bps: float = 0.0
    actual_bps: float = 0.0
    coverage: float = 0.0

    def add(self, score: Score) -> None:
        a = 1.0 if self.scored == 0 else ALPHA
        self.scored += 1
        self.abs_error_bps += a * (score.abs_error_bps - self.abs_error_bps)
        self.actual_bps += a * (score.actual_bps - self.actual_bps)
        self.coverage += a * ((1.0 if score.inside else 0.0) - self.coverage)


@dataclass
class ForecastScores:
    """The forecasts of one link waiting for their bin, and the running figures per horizon."""

    waiting: dict[int, list[Waiting]] = field(default_factory=dict)  # target bin index -> ...
    running: dict[float, Running] = field(default_factory=dict)  # horizon (s) -> figures
    # the last bin closed (not stored): nothing waits for it or for any bin before it
    closed: int | None = field(default=None, compare=False)

    def expect(self, target_index: int, forecast: Waiting) -> None:
        if self.closed is not None and target_index <= self.closed:
            self.closed = None  # a target in the past: the next close looks at them all
        self.waiting.setdefault(target_index, []).append(forecast)

    def close(self, index: int, actual_bps: float) -> list[Score]:
        """Score the forecasts for bin ``index`` (and any for skipped bins before it, as zero)."""
        scores = []
        if self.closed is not None and 0 <= index - self.closed <= NEAR_BINS:
            # the usual case, the next bin or nearly: look up its targets, not every one
            targets = [t for t in range(self.closed + 1, index + 1) if t in self.waiting]
        else:
            targets = sorted(t for t in self.waiting if t <= index)
        self.closed = index
        for target in targets:
            actual = actual_bps if target == index else 0.0
            for horizon_s, lower, median, upper in self.waiting.pop(target):
                score = Score(horizon_s, abs(median - actual), actual, lower <= actual <= upper)
                self.running.setdefault(horizon_s, Running()).add(score)
                scores.append(score)
        return scores

    def errors(self) -> list[dict[str, Any]]:
        """The running figures, for the link's state: ``HorizonError`` dicts, in its field
        order (test_scoring checks them against the model)."""
        return [
            {
                "horizon_s": h,
                "scored": r.scored,
                "mae_bps": r.abs_error_bps,
                "wape": r.abs_error_bps / r.actual_bps if r.actual_bps > 0 else None,
                "coverage": r.coverage,
            }
            for h, r in sorted(self.running.items())
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            # the live lists, not copies (encode the snapshot before the next bin closes):
            # with copies, this took about 8 % of the worker's time in a py-spy profile
            # of linkcast soak, 10,000 links each closing a bin a second (when the
            # states were stored at every drain)
            "waiting": [[t, ws] for t, ws in self.waiting.items()],
            "running": [
                [h, r.scored, r.abs_error_bps, r.actual_bps, r.coverage]
                for h, r in self.running.items()
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "ForecastScores":
        scores = cls()
        if not data:
            return scores
        for target, waiting in data.get("waiting", []):
            scores.waiting[int(target)] = [
                (float(h), _bound(lo), _bound(m), _bound(hi)) for h, lo, m, hi in waiting
            ]
        for h, n, err, actual, cov in data.get("running", []):
            scores.running[float(h)] = Running(int(n), float(err), float(actual), float(cov))
        return scores


def _bound(value: float | None) -> float:
    """A stored forecast bound: JSON (orjson) writes an infinite one as null."""
    return float("inf") if value is None else float(value)

"""Forecast error: each forecast scored against the bin it forecast, when that bin arrives.

A Forecast made at ``made_at_s`` (the end of the bin whose close produced it)
gives, per horizon ``h``, the bits/s of the bin that ends at ``made_at_s + h``.
When a window arrives whose bin ends at that time (within ``TOLERANCE_S``), the
horizon is scored against the bin's own ``bps``: the error, and whether the
actual value lay inside ``[lower_bps, upper_bps]``. The last ``keep`` scores of
each horizon give the link's mean absolute error, sMAPE and interval coverage.

Bins arrive in order per link (one partition, one worker), so a forecast whose
targets all lie at or before the newest bin seen is done: its horizons that
found no bin (a gap, or a bin that closed before the forecast arrived) stay
unscored rather than being guessed.

Pure: no Kafka, no HTTP; the view calls it.
"""

from collections import deque
from dataclasses import dataclass, field

from api.schemas import HorizonError, HorizonScore
from streams.schemas import Forecast

TOLERANCE_S = 1e-3
PENDING_MAX = 512  # forecasts awaiting their bins; at one a second, 8.5 minutes of horizons


@dataclass(frozen=True)
class Score:
    """One horizon of one forecast against the bin it forecast."""

    horizon_s: float
    made_at_s: float
    forecast_bps: float
    lower_bps: float
    upper_bps: float
    actual_bps: float

    @property
    def abs_error_bps(self) -> float:
        return abs(self.actual_bps - self.forecast_bps)

    @property
    def smape(self) -> float:
        """Symmetric absolute percentage error in [0, 2]; 0 when both values are 0."""
        scale = abs(self.actual_bps) + abs(self.forecast_bps)
        return 0.0 if scale == 0 else 2.0 * self.abs_error_bps / scale

    @property
    def inside(self) -> bool:
        return self.lower_bps <= self.actual_bps <= self.upper_bps


@dataclass
class ForecastScorer:
    """The forecasts of one link awaiting their bins, and the recent scores per horizon."""

    keep: int = 100
    pending: deque[Forecast] = field(default_factory=lambda: deque(maxlen=PENDING_MAX))
    scores: dict[float, deque[Score]] = field(default_factory=dict)

    def add_forecast(self, forecast: Forecast) -> None:
        self.pending.append(forecast)

    def add_bin(self, bin_end_s: float, actual_bps: float) -> list[Score]:
        """Score every pending horizon that targets the bin ending at ``bin_end_s``."""
        made: list[Score] = []
        for forecast in self.pending:
            for h in forecast.horizons:
                if abs(forecast.made_at_s + h.horizon_s - bin_end_s) <= TOLERANCE_S:
                    made.append(
                        Score(
                            h.horizon_s,
                            forecast.made_at_s,
                            h.bps,
                            h.lower_bps,
                            h.upper_bps,
                            actual_bps,
                        )
                    )
        for score in made:
            self.scores.setdefault(score.horizon_s, deque(maxlen=self.keep)).append(score)
        self.pending = deque(
            (f for f in self.pending if _last_target_s(f) > bin_end_s + TOLERANCE_S),
            maxlen=PENDING_MAX,
        )
        return made

    def summary(self) -> list[HorizonError]:
        """Per horizon (shortest first): MAE, sMAPE and coverage of the recent scores."""
        out = []
        for horizon_s in sorted(self.scores):
            recent = self.scores[horizon_s]
            n = len(recent)
            last = recent[-1]
            out.append(
                HorizonError(
                    horizon_s=horizon_s,
                    scored=n,
                    mae_bps=sum(s.abs_error_bps for s in recent) / n,
                    smape=sum(s.smape for s in recent) / n,
                    coverage=sum(1 for s in recent if s.inside) / n,
                    last=HorizonScore(
                        made_at_s=last.made_at_s,
                        forecast_bps=last.forecast_bps,
                        lower_bps=last.lower_bps,
                        upper_bps=last.upper_bps,
                        actual_bps=last.actual_bps,
                        inside=last.inside,
                    ),
                )
            )
        return out


def _last_target_s(forecast: Forecast) -> float:
    return forecast.made_at_s + max((h.horizon_s for h in forecast.horizons), default=0.0)

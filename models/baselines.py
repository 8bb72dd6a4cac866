"""The simple forecasts a model must beat: last value, moving average, EWMA, seasonal naive.

Each baseline sees the same series up to the same origin as the model and
forecasts the bin ``h`` steps after it. The seasonal naive forecast repeats the
bin at the same time of day in the last day before the origin (one day back
for horizons up to a day); it exists only where a day is a whole number of
bins and the series holds that history before every origin.
"""

import numpy as np

from models.features import DAY_S
from models.series import Series

MOVING_AVERAGE_BINS = 10
EWMA_ALPHA = 0.3


def season_bins(series: Series) -> int | None:
    """Bins per day, when a day is a whole number of this series' bins."""
    per_day = DAY_S / series.bin_s
    rounded = round(per_day)
    return rounded if rounded >= 2 and abs(per_day - rounded) < 1e-6 else None


def ewma(values: np.ndarray, alpha: float = EWMA_ALPHA) -> np.ndarray:
    """Exponentially weighted mean up to and including each bin."""
    out = np.empty(len(values), dtype=np.float64)
    acc = float(values[0]) if len(values) else 0.0
    for i, v in enumerate(values):
        acc = alpha * float(v) + (1.0 - alpha) * acc
        out[i] = acc
    return out


def baseline_forecasts(
    series: Series, at: np.ndarray, horizons: tuple[int, ...]
) -> dict[str, np.ndarray]:
    """Each baseline's forecasts for windows ending at bins ``at``: name -> (len(at), H)."""
    y = series.bps.astype(np.float64)
    h = np.asarray(horizons)
    n_h = len(horizons)
    csum = np.concatenate([[0.0], np.cumsum(y)])
    lo = np.maximum(at + 1 - MOVING_AVERAGE_BINS, 0)
    moving = (csum[at + 1] - csum[lo]) / (at + 1 - lo)
    out = {
        "last_value": np.repeat(y[at][:, None], n_h, axis=1),
        "moving_average": np.repeat(moving[:, None], n_h, axis=1),
        "ewma": np.repeat(ewma(y)[at][:, None], n_h, axis=1),
    }
    season = season_bins(series)
    if season is not None and len(at):
        # the same time of day, in the last day before the origin: a whole number of
        # days back, so a horizon longer than a day never reads the future
        lag = season * np.ceil(h / season).astype(int)
        if at.min() + h.min() - lag.max() >= 0 or np.all(at[:, None] + h[None, :] - lag >= 0):
            out["seasonal_naive"] = y[at[:, None] + h[None, :] - lag[None, :]]
    return out

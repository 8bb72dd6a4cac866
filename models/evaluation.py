"""Judging a forecaster against the baselines on the same windows, per data source.

The score that decides whether a model may become current is its WAPE (sum
of absolute errors over sum of actual values, ``metrics.wape``), averaged over
the horizons and then over the data sources (so a source with many series
does not drown one with few), against the best baseline's score computed the
same way over the baselines every source has. Not sMAPE: on a sparse link
(most bins zero, as in the Westermo capture) sMAPE charges 200 % for
forecasting 300 bit/s where 0 came, and rewards the last-value forecast's
exact zeros however large its errors on the busy bins. Per source, every
baseline the source allows (seasonal naive needs a day of history) is
reported beside the model with MAE, RMSE and sMAPE per horizon.
"""

from collections.abc import Callable
from typing import Any

import numpy as np

from models.baselines import baseline_forecasts, season_bins
from models.exceptions import DataError
from models.features import to_bps
from models.metrics import coverage, errors
from models.series import Series, origins, source_cuts, windows

GATE_METRIC = "wape"
SYNTHETIC = {"simulator"}  # sources that are not measured traffic
#: (n, T, channels) float32 -> (n, H, 3) quantile outputs (lower, median, upper)
Predict = Callable[[np.ndarray], np.ndarray]


def _per_series(
    predict: Predict,
    s: Series,
    window_bins: int,
    horizons: tuple[int, ...],
    stretch: str,
    stride: int,
    cuts: tuple[float, float],
) -> dict[str, np.ndarray] | None:
    at = origins(s, window_bins, max(horizons), stretch, stride, cuts)
    season = season_bins(s)
    if season is not None and np.any(at >= season):
        at = at[at >= season]  # the same windows for every forecast, seasonal naive included
    if len(at) == 0:
        return None
    w = windows([s], window_bins, horizons, ends=[at])
    bps = to_bps(predict(w.x), w.level)
    out = {"actual": w.actual, "lower": bps[:, :, 0], "model": bps[:, :, 1], "upper": bps[:, :, 2]}
    for name, forecast in baseline_forecasts(s, at, horizons).items():
        out[f"baseline:{name}"] = forecast
    return out


def evaluate(
    predict: Predict,
    many: list[Series],
    window_bins: int,
    horizons: tuple[int, ...],
    stretch: str = "test",
    stride: int = 1,
) -> dict[str, Any]:
    """The model's and the baselines' errors on ``stretch`` of every series, and the gate."""
    by_source: dict[str, list[dict[str, np.ndarray]]] = {}
    cuts = source_cuts(many)
    for s in many:
        part = _per_series(predict, s, window_bins, horizons, stretch, stride, cuts[s.source])
        if part is not None:
            by_source.setdefault(s.source, []).append(part)
    if not by_source:
        raise DataError(
            f"no series (or stretch of one without gaps) holds {window_bins + max(horizons)} "
            f"bins: {window_bins} to forecast from and {max(horizons)} ahead"
        )
    unjudged = sorted({s.source for s in many} - set(by_source))
    sources: dict[str, Any] = {}
    for source, parts in sorted(by_source.items()):
        keys = set.intersection(*(set(p) for p in parts))
        joined = {k: np.concatenate([p[k] for p in parts]) for k in keys}
        actual = joined["actual"]
        entry: dict[str, Any] = {
            "series": len(parts),
            "windows": len(actual),
            "model": {
                **errors(joined["model"], actual),
                "coverage": coverage(joined["lower"], joined["upper"], actual).tolist(),
            },
            "baselines": {
                k.split(":", 1)[1]: errors(v, actual)
                for k, v in sorted(joined.items())
                if k.startswith("baseline:")
            },
        }
        sources[source] = entry

    def score(who: str | None, real_only: bool = False) -> float:
        """The gate metric of the model (None) or of one baseline, over horizons then sources."""
        picked = [e for name, e in sources.items() if not (real_only and name in SYNTHETIC)]
        return (
            float(
                np.mean(
                    [
                        np.mean((e["model"] if who is None else e["baselines"][who])[GATE_METRIC])
                        for e in picked
                    ]
                )
            )
            if picked
            else float("nan")
        )

    common = set.intersection(*(set(e["baselines"]) for e in sources.values()))
    model_score = score(None)
    baseline_scores = {b: score(b) for b in sorted(common)}
    best = min(baseline_scores, key=lambda b: baseline_scores[b])
    margin = 100.0 * (baseline_scores[best] - model_score) / baseline_scores[best]
    return {
        "stretch": stretch,
        "unjudged_sources": unjudged,
        "horizons_bins": list(horizons),
        "window_bins": window_bins,
        "sources": sources,
        "score": {
            "metric": "mean WAPE over horizons, then over sources (%)",
            "model": model_score,
            "baselines": baseline_scores,
            # the same without the simulator: how the model does on measured traffic alone
            "real_sources_model": score(None, real_only=True),
            "real_sources_baselines": {b: score(b, real_only=True) for b in sorted(common)},
        },
        "gate": {
            "best_baseline": best,
            "passed": model_score < baseline_scores[best],
            "margin_pct": margin,
            "coverage_nominal": 0.8,
            "coverage_mean": float(
                np.mean([np.mean(e["model"]["coverage"]) for e in sources.values()])
            ),
        },
    }

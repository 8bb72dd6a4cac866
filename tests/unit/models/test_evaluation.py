"""The gate: a model that knows the future passes, one that forecasts nonsense does not."""

import numpy as np
import pytest

from models.evaluation import evaluate
from models.exceptions import DataError
from models.series import Series, windows


def _waves() -> list[Series]:
    t = np.arange(400, dtype=float)
    return [Series(f"w{k}", "waves", 1.0, t, 1e6 * (2 + np.sin(t / 7 + k))) for k in range(2)]


def _oracle(many: list[Series], window_bins: int, horizons: tuple[int, ...]):
    """A predictor that returns the true future (it looks the windows up)."""
    w = windows(many, window_bins, horizons, "all")
    table = {
        x.tobytes(): np.log1p(a) - lvl for x, a, lvl in zip(w.x, w.actual, w.level, strict=True)
    }

    def predict(x: np.ndarray) -> np.ndarray:
        median = np.array([table[row.tobytes()] for row in x])
        return np.stack([median - 0.01, median, median + 0.01], axis=-1)

    return predict


def test_a_model_that_knows_the_future_passes_the_gate():
    many = _waves()
    report = evaluate(_oracle(many, 10, (1, 5)), many, 10, (1, 5))
    assert report["gate"]["passed"]
    assert report["score"]["model"] < 1e-6
    assert report["sources"]["waves"]["model"]["coverage"] == [1.0, 1.0]


def test_a_model_that_forecasts_nonsense_fails_the_gate():
    many = _waves()
    report = evaluate(lambda x: np.full((len(x), 2, 3), 5.0), many, 10, (1, 5))
    assert not report["gate"]["passed"]
    assert report["gate"]["margin_pct"] < 0


def test_series_too_short_for_any_window_are_a_clear_error():
    short = [Series("s", "tiny", 1.0, np.arange(12.0), np.ones(12))]
    with pytest.raises(DataError, match="holds 15 bins: 10 to forecast from and 5 ahead"):
        evaluate(lambda x: np.zeros((len(x), 2, 3)), short, 10, (1, 5))

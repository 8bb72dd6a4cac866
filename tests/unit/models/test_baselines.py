"""Baselines and error measures on series small enough to check by hand."""

import numpy as np
import pytest

from models.baselines import baseline_forecasts, ewma, season_bins
from models.metrics import coverage, mae, rmse, smape
from models.series import Series, origins, windows


def _series(values: list[float], bin_s: float = 1.0) -> Series:
    return Series("s", "test", bin_s, np.arange(len(values)) * bin_s, np.asarray(values, float))


def test_last_value_moving_average_and_ewma():
    s = _series([1, 2, 3, 4, 5, 6])
    f = baseline_forecasts(s, np.array([3]), (1, 2))
    assert f["last_value"].tolist() == [[4.0, 4.0]]
    assert f["moving_average"].tolist() == [[2.5, 2.5]]  # fewer than 10 bins: all of them
    assert f["ewma"][0, 0] == pytest.approx(ewma(s.bps)[3])
    assert "seasonal_naive" not in f  # a day of 1 s bins is far longer than the series


def test_seasonal_naive_repeats_the_bin_one_day_earlier():
    day = 288
    values = np.tile(np.arange(day, dtype=float), 3)
    s = Series("s", "test", 300.0, np.arange(len(values)) * 300.0, values)
    assert season_bins(s) == day
    at = np.array([day + 10, 2 * day])
    f = baseline_forecasts(s, at, (1, 5))
    assert f["seasonal_naive"].tolist() == [[11.0, 15.0], [1.0, 5.0]]


def test_error_measures():
    forecast = np.array([[2.0], [0.0], [3.0]])
    actual = np.array([[1.0], [0.0], [3.0]])
    assert mae(forecast, actual).tolist() == [1 / 3]
    assert rmse(forecast, actual).tolist() == [pytest.approx(np.sqrt(1 / 3))]
    assert smape(forecast, actual).tolist() == [pytest.approx(100 * (2 / 3) / 3)]  # 0/0 counts 0
    assert coverage(actual - 1, actual + 1, actual).tolist() == [1.0]


def test_windows_of_stretches_never_share_a_target():
    s = _series(list(range(100)))
    horizons = (1, 3)
    seen: dict[str, set[int]] = {}
    for stretch in ("train", "validation", "test"):
        at = origins(len(s), 5, 3, stretch)
        seen[stretch] = {int(a) + h for a in at for h in horizons}
    assert not seen["train"] & seen["validation"]
    assert not seen["validation"] & seen["test"]
    w = windows([s], 5, horizons, "test")
    assert w.actual.tolist()[0] == [w.origin[0] + 1, w.origin[0] + 3]
    assert w.x.shape == (len(w), 5, w.x.shape[2])

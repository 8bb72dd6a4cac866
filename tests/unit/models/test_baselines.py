"""Baselines and error measures on series small enough to check by hand."""

import numpy as np
import pytest

from models.baselines import baseline_forecasts, ewma, season_bins
from models.metrics import coverage, mae, rmse, smape
from models.series import Series, origins, source_cuts, windows


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


def test_stretches_cut_every_series_of_a_source_at_the_same_instants():
    # two series of one source over different spans: 0..99 s and 50..149 s
    long = _series(list(range(100)))
    late = Series("late", "test", 1.0, np.arange(50, 150, dtype=float), np.arange(100.0))
    cuts = source_cuts([long, late])["test"]
    assert cuts == pytest.approx((104.3, 119.2))  # 70 % and 80 % of the source's span 0..149
    horizons = (1, 3)
    for s in (long, late):
        train_targets = s.start_s[origins(s, 5, 3, "train", cuts=cuts) + 3]
        test_origins = s.start_s[origins(s, 5, 3, "test", cuts=cuts)]
        assert np.all(train_targets < cuts[0])  # no training target in a judged time
        assert np.all(test_origins >= cuts[1])
    w = windows([long, late], 5, horizons, "test")
    assert set(w.series.tolist()) == {1}  # only the late series reaches the judged time
    assert w.actual.tolist()[0] == [w.origin[0] + 1, w.origin[0] + 3]
    assert w.x.shape == (len(w), 5, w.x.shape[2])


def test_seasonal_naive_never_reads_past_the_origin():
    # hourly bins: a day is 24 bins; a 30-bin horizon looks two days back, not one
    values = np.arange(200, dtype=float)
    s = Series("s", "test", 3600.0, np.arange(200) * 3600.0, values)
    at = np.array([100])
    f = baseline_forecasts(s, at, (1, 30))
    assert f["seasonal_naive"].tolist() == [[101.0 - 24, 130.0 - 48]]
    assert f["seasonal_naive"].max() <= 100

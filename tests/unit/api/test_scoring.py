"""Forecast scoring: each horizon against the bin it forecast, when that bin arrives."""

import pytest

from api.scoring import ForecastScorer
from streams.schemas import Forecast, HorizonForecast


def forecast(made_at_s: float, bps: float = 100.0, horizons: tuple[float, ...] = (1.0, 3.0)):
    return Forecast(
        link="a",
        made_at_s=made_at_s,
        horizons=[
            HorizonForecast(horizon_s=h, bps=bps, lower_bps=max(0, bps - 10), upper_bps=bps + 10)
            for h in horizons
        ],
        model_version="m",
    )


def test_each_horizon_is_scored_by_the_bin_that_ends_at_its_target():
    # event time: 10   11   12   13        forecast made at 10 for +1 (11) and +3 (13)
    #                  ^bin ends 11 -> +1 scored; ^ends 13 -> +3 scored
    scorer = ForecastScorer()
    scorer.add_forecast(forecast(10.0))
    assert [s.horizon_s for s in scorer.add_bin(11.0, 105.0)] == [1.0]
    assert scorer.add_bin(12.0, 500.0) == []
    [late] = scorer.add_bin(13.0, 150.0)
    assert (late.horizon_s, late.abs_error_bps, late.inside) == (3.0, 50.0, False)
    assert scorer.pending == type(scorer.pending)()  # done with: all its targets have passed
    by_h = {e.horizon_s: e for e in scorer.summary()}
    assert by_h[1.0].mae_bps == 5.0
    assert by_h[1.0].coverage == 1.0
    assert by_h[3.0].coverage == 0.0
    assert by_h[3.0].smape == pytest.approx(2 * 50 / 250)


def test_a_missing_bin_leaves_its_horizon_unscored_and_the_forecast_is_dropped():
    scorer = ForecastScorer()
    scorer.add_forecast(forecast(10.0))
    assert scorer.add_bin(14.0, 1.0) == []  # bins 11 and 13 never came
    assert not scorer.pending
    assert scorer.summary() == []


def test_scores_are_kept_per_horizon_up_to_keep_and_zero_against_zero_is_no_error():
    scorer = ForecastScorer(keep=3)
    for t in range(10):
        scorer.add_forecast(forecast(float(t), bps=0.0, horizons=(1.0,)))
        scorer.add_bin(float(t + 1), 0.0)
    [only] = scorer.summary()
    assert (only.scored, only.mae_bps, only.smape, only.coverage) == (3, 0.0, 0.0, 1.0)
    assert only.last.made_at_s == 9.0

"""Forecast scoring: each forecast against the bin it forecast, when that bin closes."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.schemas import HorizonError
from streams.scoring import ALPHA, ForecastScores


def test_a_forecast_is_scored_when_its_bin_closes():
    scores = ForecastScores()
    scores.expect(5, (1.0, 80.0, 100.0, 120.0))
    scores.expect(14, (10.0, 50.0, 100.0, 150.0))
    assert scores.close(4, 90.0) == []
    [first] = scores.close(5, 130.0)  # 30 over, outside [80, 120]
    assert (first.abs_error_bps, first.inside) == (30.0, False)
    [h1] = [HorizonError.model_validate(e) for e in scores.errors()]
    assert (h1.horizon_s, h1.scored, h1.mae_bps, h1.coverage) == (1.0, 1, 30.0, 0.0)
    assert h1.wape == pytest.approx(30.0 / 130.0)
    assert list(scores.errors()[0]) == list(HorizonError.model_fields)  # the model's order
    # bins 6..13 were silent and skipped; bin 15 closes: the forecast for 14 scores zero
    [late] = scores.close(15, 70.0)
    assert (late.horizon_s, late.actual_bps, late.abs_error_bps, late.inside) == (
        10.0,
        0.0,
        100.0,
        False,
    )
    assert scores.waiting == {}


def test_running_figures_weight_recent_forecasts_and_survive_a_restart():
    scores = ForecastScores()
    for k in range(3):
        scores.expect(k, (1.0, 0.0, 100.0, 200.0))
    for k, actual in enumerate((100.0, 100.0, 300.0)):
        scores.close(k, actual)
    [h] = [HorizonError.model_validate(e) for e in scores.errors()]
    # first score sets the figure, later ones move it by ALPHA: 0, then 0, then 200 * ALPHA
    assert h.mae_bps == pytest.approx(200.0 * ALPHA)
    assert h.coverage == pytest.approx(1.0 - ALPHA)
    scores.expect(9, (1.0, 1.0, 2.0, 3.0))
    again = ForecastScores.from_dict(scores.to_dict())
    assert again.errors() == scores.errors()
    assert again.waiting == scores.waiting


def test_an_unbounded_forecast_survives_the_store():
    """orjson, which Faust uses for the table, writes infinity as null."""
    import orjson

    scores = ForecastScores()
    scores.expect(3, (1.0, 0.0, 1e308, float("inf")))
    again = ForecastScores.from_dict(orjson.loads(orjson.dumps(scores.to_dict())))
    assert again.waiting == {3: [(1.0, 0.0, 1e308, float("inf"))]}
    [score] = again.close(3, 5.0)
    assert score.inside


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(1, 20), st.lists(st.integers(1, 70), max_size=3)), max_size=40
    )
)
def test_scores_are_those_of_a_scan_of_every_waiting_forecast(steps):
    """Closing looks up the targets of the bins since the last close; a scan of all the
    waiting forecasts (as after a restart) must give the same scores."""
    fast, scan = ForecastScores(), ForecastScores()
    index = 0
    for gap, horizons in steps:
        index += gap  # bins are closed in order; a gap is a silence the bin code skipped
        scan.closed = None
        assert fast.close(index, 100.0 * gap) == scan.close(index, 100.0 * gap)
        for h in horizons:
            for scores in (fast, scan):
                scores.expect(index + h, (float(h), 50.0, 100.0, 150.0))
    assert fast.waiting == scan.waiting
    assert fast.errors() == scan.errors()

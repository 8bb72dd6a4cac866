"""Forecasts on bin close: per-link history, one model call per message, the real packaged model."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from models.registry import Registry
from models.runtime import load_forecaster
from streams.bins import BinConfig, LinkBins
from streams.forecasting import COLUMNS, Due, History, forecast_due
from streams.processor import LinkProcessor
from streams.records import to_json
from streams.schemas import Forecast

T0 = 1_767_225_600.0


def _steady_link(proc: LinkProcessor, seconds: int) -> tuple[list[Forecast], list]:
    """One 1,000-byte record a second on link "a"; the forecasts and link states published."""
    from streams.schemas import LinkState

    forecasts, states = [], []
    for second in range(seconds):
        proc.on_flow(
            *_flow("a", T0 + second + 0.5, 1000),
            partition=0,
            offset=second,
            timestamp_ms=None,
            now_s=1.0,
        )
        out = proc.drain(0.0)
        proc.store_states(out)
        forecasts += [Forecast.model_validate_json(v) for _, v in out.forecasts]
        states += [LinkState.model_validate_json(v) for _, v in out.link_states]
    return forecasts, states


def test_history_keeps_the_last_bins_and_fills_skipped_silence_with_zeros():
    bins = LinkBins.empty(bin_s=1.0, lateness_s=0.0, window_bins=2)
    history = History(4)
    closed = [*bins.add(T0 + 0.5, 100), *bins.add(T0 + 1.5, 50), *bins.add(T0 + 9.5, 7)]
    closed += bins.advance(T0 + 10.0)
    for b in closed:
        history.add(b, 1.0)
    # the bin code skips bins 4..8 (the window was all zeros); history has them back as zeros
    assert [(p[0] - T0, p[1]) for p in history.points] == [(6.0, 0), (7.0, 0), (8.0, 0), (9.0, 7)]
    # stored as the store reads it back: every start, and the rows with traffic only
    stored = json.loads(to_json({"history": history.to_stored()}))["history"]
    assert stored == {
        "starts": [T0 + 6.0, T0 + 7.0, T0 + 8.0, T0 + 9.0],
        "busy": [3],
        "rows": [history.rows[-1, 1:].tolist()],
    }
    assert History.from_stored(4, stored).points == history.points
    assert History.from_stored(4, history.rows.tolist()).points == history.points  # rows whole
    busy = History(2)
    busy.add(closed[-1], 1.0)
    busy.add(dataclasses.replace(closed[0], index=10, start_s=T0 + 10.0, end_s=T0 + 11.0), 1.0)
    assert isinstance(busy.to_stored(), np.ndarray)  # no empty row: the array as it is


def test_history_reads_the_rows_older_workers_stored():
    old = [[T0 + 1, 100, 2, 1, [100, 0, 0, 0, 0, 0, 0]], [T0 + 2, 0, 0, 0, [0] * 7]]
    history = History.from_stored(4, old)
    assert history.points == [
        (T0 + 1, 100, 2, 1, (100, 0, 0, 0, 0, 0, 0)),
        (T0 + 2, 0, 0, 0, (0,) * 7),
    ]
    assert History.from_stored(4, history.to_stored()).points == history.points
    with pytest.raises(ValueError, match="history rows of 3 values"):
        History.from_stored(4, [[T0, 1, 2]])


def test_a_resized_history_keeps_its_last_bins():
    bins = LinkBins.empty(bin_s=1.0, lateness_s=0.0, window_bins=2)
    history = History(3)
    for b in [*bins.add(T0 + 0.5, 1), *bins.add(T0 + 1.5, 2), *bins.add(T0 + 2.5, 3)]:
        history.add(b, 1.0)
    history.add(bins.advance(T0 + 3.0)[0], 1.0)
    history.resize(2)
    assert [p[1] for p in history.points] == [2, 3]
    assert history.full
    history.resize(4)
    assert [p[1] for p in history.points] == [2, 3]
    assert not history.full


class _Fixed:
    """A forecaster that answers the same (lower, median, upper) for every window."""

    version, window_bins, horizons = "fixed-1", 2, (1, 10)

    def __init__(self, answer):
        self.answer = answer

    def forecast(self, bps, bin_start_s, bin_s, **counts):
        return np.tile(np.asarray(self.answer, dtype=np.float64), (len(bps), 2, 1))


def _due():
    rows = np.zeros((2, len(COLUMNS)))
    rows[:, 0], rows[:, 1] = (T0, T0 + 1), (100, 200)
    return [Due("edge-1", int(T0) + 1, rows, 1000.0)]


def test_a_forecast_message_is_what_its_model_would_write():
    messages, expected = forecast_due(_Fixed([10.0, 20.5, 1e12]), _due(), 1.0)
    [(key, value)] = messages
    parsed = Forecast.model_validate_json(value)  # valid, no unknown field
    written = json.loads(value)
    assert key == b"edge-1"
    assert written == json.loads(parsed.model_dump_json())
    assert list(written) == list(json.loads(parsed.model_dump_json()))
    assert written["made_at_s"] == T0 + 2
    assert [h["horizon_s"] for h in written["horizons"]] == [1, 10]
    assert [[t for t, _ in per_due] for per_due in expected] == [[int(T0) + 2, int(T0) + 11]]


@pytest.mark.parametrize(
    "answer", [[-1.0, 2.0, 3.0], [1.0, float("nan"), 3.0], [1.0, 2.0, float("inf")]]
)
def test_a_window_answered_negative_or_non_finite_gets_no_forecast(answer):
    class OneBad(_Fixed):
        def forecast(self, bps, bin_start_s, bin_s, **counts):
            out = super().forecast(bps, bin_start_s, bin_s, **counts)
            out[1] = answer  # the second window only
            return out

    due = _due() * 3
    messages, expected = forecast_due(OneBad([10.0, 20.0, 30.0]), due, 1.0)
    assert len(messages) == 2
    assert [len(e) for e in expected] == [2, 0, 2]


class Counting:
    """The real forecaster, counting its calls and the windows in each."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []
        self.version, self.window_bins, self.horizons = (
            inner.version,
            inner.window_bins,
            inner.horizons,
        )

    def forecast(self, bps, *args, **kwargs):
        self.calls.append(len(bps))
        return self.inner.forecast(bps, *args, **kwargs)


@pytest.fixture(scope="module")
def real_forecaster():
    return load_forecaster(Registry(Path("/nonexistent-registry")).current("forecaster"))


def _flow(link: str, ts: float, nbytes: int) -> tuple[bytes, bytes]:
    return link.encode(), json.dumps(
        {"link": link, "ts": ts, "bytes": nbytes, "packets": 2}
    ).encode()


def test_every_closed_bin_with_a_full_history_is_forecast_in_one_call_per_message(real_forecaster):
    model = Counting(real_forecaster)
    proc = LinkProcessor(
        BinConfig.of(1.0, 0.0, 10),
        {},
        source_topic="p.flows",
        idle_close_after_s=3.0,
        forecaster=model,
    )
    t = model.window_bins
    forecasts: list[Forecast] = []
    offset = 0
    for second in range(t + 5):
        for link in ("a", "b", "c"):
            proc.on_flow(
                *_flow(link, T0 + second + 0.5, 1000 + 10 * second),
                partition=0,
                offset=offset,
                timestamp_ms=None,
                now_s=1000.0,
            )
            out = proc.drain(0.0)
            offset += 1
            proc.store_states(out)
            forecasts += [Forecast.model_validate_json(v) for _, v in out.forecasts]
    # bins 0..t+3 closed per link (the last record, at t+4.5, closes bin t+3); forecasts
    # start at bin t-1, the one that fills the history, and are made at its end
    per_link = [f for f in forecasts if f.link == "a"]
    assert [f.made_at_s - T0 for f in per_link] == [float(s) for s in range(t, t + 5)]
    assert all(n == 1 for n in model.calls)  # one record closes one link's bin
    assert [h.horizon_s for h in per_link[0].horizons] == [float(h) for h in model.horizons]
    assert all(h.lower_bps <= h.bps <= h.upper_bps for f in forecasts for h in f.horizons)
    # the link's level is about 8 kbit/s: forecasts are of that order, not wild
    assert 1e3 < per_link[-1].horizons[0].bps < 1e5
    model.calls.clear()
    proc.on_tick(0, 1010.0, caught_up=True)  # all three links silent: their bins close
    out = proc.drain(1010.0)
    assert len(out.forecasts) >= 3
    assert model.calls == [len(out.forecasts)]  # one model call for every link's bins


def test_forecasts_resume_identically_after_a_restart_from_the_stored_state(real_forecaster):
    def run(records, store):
        proc = LinkProcessor(
            BinConfig.of(1.0, 0.0, 10),
            store,
            source_topic="p.flows",
            idle_close_after_s=3.0,
            forecaster=real_forecaster,
        )
        got = []
        for offset, (key, value) in records:
            proc.on_flow(key, value, partition=0, offset=offset, timestamp_ms=None, now_s=1.0)
            out = proc.drain(1.0)
            proc.store_states(out)
            got += [json.loads(v) | {"latency_s": None} for _, v in out.forecasts]
        return got, proc.safe_offset(0)

    rng = np.random.default_rng(3)
    records = [(i, _flow("a", T0 + i * 0.5, int(rng.integers(500, 5000)))) for i in range(180)]
    straight, _ = run(records, {})
    store: dict = {}
    before, safe = run(records[:120], store)
    assert safe is not None
    assert 100 < safe <= 120
    # a new processor: history comes from the store, Kafka delivers from the safe offset
    after, _ = run(records[safe:], store)
    assert before + after == straight
    assert len(straight) > 10


def test_link_state_carries_each_horizons_error_once_its_bins_close(real_forecaster):

    proc = LinkProcessor(
        BinConfig.of(1.0, 0.0, 10),
        {},
        source_topic="p.flows",
        idle_close_after_s=3.0,
        forecaster=real_forecaster,
    )
    _, states = _steady_link(proc, real_forecaster.window_bins + 15)
    errors = {e.horizon_s: e for e in states[-1].forecast_error}
    # forecasts from bin t-1 on; bins up to t+13 closed: +1 s scored 14 times, +10 s 5 times
    assert errors[1.0].scored == 14
    assert errors[10.0].scored == 5
    assert 60.0 not in errors
    assert errors[1.0].wape is not None
    assert errors[1.0].wape < 1.0  # a steady 8 kbit/s link is forecast within its own size


def test_configured_horizons_are_the_models_own_figures_for_just_those(real_forecaster):
    from streams.forecasting import select_horizons

    assert real_forecaster.horizons == (1, 10, 60)  # the packaged model, in 1 s bins
    chosen = select_horizons(real_forecaster, (1.0, 60.0), 1.0)
    assert chosen.horizons == (1, 60)
    assert (chosen.version, chosen.window_bins) == (
        real_forecaster.version,
        real_forecaster.window_bins,
    )
    rng = np.random.default_rng(5)
    t = real_forecaster.window_bins
    bps = rng.uniform(1e3, 1e6, size=(4, t))
    starts = T0 + np.tile(np.arange(t, dtype=np.float64), (4, 1))
    full = real_forecaster.forecast(bps, starts, 1.0)
    np.testing.assert_array_equal(chosen.forecast(bps, starts, 1.0), full[:, [0, 2]])

    # through the processor: published forecasts and scored errors hold only those two
    proc = LinkProcessor(
        BinConfig.of(1.0, 0.0, 10),
        {},
        source_topic="p.flows",
        idle_close_after_s=3.0,
        forecaster=chosen,
    )
    forecasts, states = _steady_link(proc, t + 15)
    assert forecasts
    assert {tuple(h.horizon_s for h in f.horizons) for f in forecasts} == {(1.0, 60.0)}
    assert {e.horizon_s: e.scored for e in states[-1].forecast_error} == {1.0: 14}


def test_a_horizon_the_model_does_not_make_is_refused_with_the_ones_it_does(real_forecaster):
    from streams.exceptions import HorizonsUnavailableError
    from streams.forecasting import select_horizons

    assert select_horizons(real_forecaster, None, 1.0) is real_forecaster
    with pytest.raises(HorizonsUnavailableError) as refused:
        select_horizons(real_forecaster, (1.0, 30.0), 1.0)
    message = str(refused.value)
    assert "not 30 s" in message
    assert "[1, 10, 60]" in message
    assert "LINKCAST_FORECAST_HORIZONS_S" in message
    # in 2 s bins the same model forecasts 2, 20 and 120 s ahead
    assert select_horizons(real_forecaster, (20.0,), 2.0).horizons == (10,)
    with pytest.raises(HorizonsUnavailableError, match=r"forecasts 2, 20, 120 s ahead, not 1 s"):
        select_horizons(real_forecaster, (1.0,), 2.0)


def test_a_worker_refuses_horizons_its_model_lacks_before_it_touches_kafka(tmp_path):
    from tests.helpers import run_linkcast

    done = run_linkcast(
        ["worker"],
        {
            "LINKCAST_KAFKA_BOOTSTRAP": "127.0.0.1:1",  # nothing listens: Kafka never answers
            "LINKCAST_BROKER_TIMEOUT_S": "5",
            "LINKCAST_FORECAST_HORIZONS_S": "[7]",
            "LINKCAST_DATA_DIR": str(tmp_path),
        },
    )
    assert done.returncode == 1
    assert "not 7 s: set LINKCAST_FORECAST_HORIZONS_S" in done.stderr
    assert "did not answer" not in done.stderr  # the models are loaded first


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("[]", "at least one horizon"),
        ("[0]", "above 0"),
        ("[10, 10]", "listed twice"),
        ("ten", "JSON"),
    ],
)
def test_the_horizons_setting_refuses_what_cannot_be_a_horizon_list(monkeypatch, value, reason):
    from pydantic import ValidationError

    from streams.settings import StreamSettings

    monkeypatch.setenv("LINKCAST_FORECAST_HORIZONS_S", value)
    with pytest.raises(ValidationError, match=reason):
        StreamSettings()
    monkeypatch.setenv("LINKCAST_FORECAST_HORIZONS_S", "[60, 1]")
    assert StreamSettings().forecast_horizons_s == (1.0, 60.0)

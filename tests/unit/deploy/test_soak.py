"""`linkcast soak`'s verdict (does a series keep growing?), its latency quantiles and its
arguments; the soak itself runs for minutes against a broker, so not here (`make soak`)."""

import math
import random

import pytest

from deploy import growth
from deploy.cli import build_parser, main
from deploy.soakreport import MIB, interval, row_text
from deploy.soaksample import STAGES, Sample, quantile

# a 10-minute run sampled every 10 s, as `make soak` does
TIMES = [10.0 * k for k in range(1, 61)]
LIMITS = {"allowed_per_min": 2.0, "margin": 8.0}  # 0.5 %/min and 2 % of 400 MiB


def judge(values: list[float]) -> growth.Trend:
    return growth.trend(TIMES, values, **LIMITS)


def test_a_flat_series_holds():
    verdict = judge([400.0] * 60)
    assert not verdict.growing
    assert verdict.slope_per_min == 0.0
    assert verdict.samples == 30  # from half the run on: 310 s to 600 s


def test_a_steadily_growing_series_fails():
    # +5 MiB a minute, the whole run: a leak of 7 GiB a day
    verdict = judge([400.0 + 0.5 * k for k in range(60)])
    assert verdict.growing
    assert verdict.slope_per_min == pytest.approx(3.0)
    assert verdict.late - verdict.early == pytest.approx(0.5 * 20)


def test_a_noisy_flat_series_holds():
    rng = random.Random(3)
    for _ in range(20):
        # RSS jitter of a few MiB, as allocators and RocksDB's memtables give
        assert not judge([400.0 + rng.gauss(0, 4) for _ in TIMES]).growing


def test_a_series_that_grows_then_plateaus_holds():
    # 250 MiB -> 400 MiB over the first four minutes (links and histories filling), then flat
    values = [min(400.0, 250.0 + 6.25 * k) for k in range(60)]
    assert not judge(values).growing


def test_a_passing_spike_is_not_taken_for_a_trend():
    # +30 MiB for 30 s in the middle of the judged half (a burst of allocations), then back
    values = [400.0] * 43 + [430.0] * 3 + [400.0] * 14
    verdict = judge(values)
    assert verdict.early == verdict.late == 400.0
    assert not verdict.growing


def test_a_lag_that_climbs_in_the_second_half_fails():
    lag = [200.0] * 30 + [200.0 + 400.0 * k for k in range(30)]  # 2,400 records a minute
    assert growth.trend(TIMES, lag, allowed_per_min=800.0, margin=4000.0).growing


def test_too_few_samples_are_refused_rather_than_judged():
    with pytest.raises(ValueError, match="6 are needed"):
        growth.trend([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], allowed_per_min=1, margin=1)


def test_slope_is_per_minute():
    assert growth.slope_per_min([(0.0, 0.0), (30.0, 1.0), (60.0, 2.0)]) == pytest.approx(2.0)


# ---- latency quantiles from two readings of a histogram -------------------

BEFORE = {0.01: 10.0, 0.1: 10.0, 1.0: 10.0, math.inf: 10.0}


def test_quantile_interpolates_inside_the_bucket_of_the_interval():
    # 100 new observations: 50 in (0.01, 0.1], 50 in (0.1, 1.0]
    after = {0.01: 10.0, 0.1: 60.0, 1.0: 110.0, math.inf: 110.0}
    assert quantile(0.5, BEFORE, after) == pytest.approx(0.1)
    assert quantile(0.25, BEFORE, after) == pytest.approx(0.01 + 0.09 * 0.5)
    assert quantile(0.99, BEFORE, after) == pytest.approx(0.1 + 0.9 * 0.98)


def test_quantile_above_the_largest_bound_is_that_bound():
    after = {0.01: 10.0, 0.1: 10.0, 1.0: 10.0, math.inf: 30.0}
    assert quantile(0.5, BEFORE, after) == 1.0


def test_quantile_of_an_interval_without_observations_is_none():
    assert quantile(0.5, BEFORE, dict(BEFORE)) is None


def sample(t_s: float, heap: float | None) -> Sample:
    no_latency: dict[str, dict[float, float]] = {stage: {} for stage in STAGES}
    return Sample(
        t_s, 8_000, 800 * MIB, t_s * 0.9, 8_000, 10_000, 10_500, 12, 4, 1.1, heap, no_latency
    )


def test_a_row_shows_the_heap_in_use_beside_rss_or_a_dash_without_it():
    row = interval(sample(10, None), sample(20, 500 * MIB))
    assert row["rss_mib"] == 800
    assert row["heap_in_use_mib"] == 500
    assert row["cpu_share"] == pytest.approx(0.9)
    assert row_text(row).split()[1:4] == ["800.0", "500", "90"]
    assert row_text(interval(None, sample(10, None))).split()[1:3] == ["800.0", "-"]


# ---- arguments -------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["soak", "--minutes", "0"], "must be a positive number"),
        (["soak", "--minutes", "ten"], "is not a number"),
        (["soak", "--links", "0"], "must be 1 or more"),
        (["soak", "--rate", "-5"], "must be a positive number"),
        (["soak", "--churn", "1.5"], "a share of the links: 0 to 1"),
    ],
)
def test_bad_arguments_exit_with_a_reason(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert says in capsys.readouterr().err


def test_a_sample_period_too_long_to_judge_is_refused_before_anything_starts(capsys):
    # 1 min sampled every 10 s leaves 3 samples in the second half: nothing is started
    assert main(["soak", "--minutes", "1", "--sample", "10"]) == 1
    assert "fewer than 6 samples in the second half" in capsys.readouterr().err


def test_a_cpu_not_ours_is_refused(capsys):
    assert main(["soak", "--cpu", "4096"]) == 1
    assert "--cpu 4096 is not one of this process's CPUs" in capsys.readouterr().err

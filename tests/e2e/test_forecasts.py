"""A running worker forecasts every closed bin of a link once it has a full history."""

from pathlib import Path

import pytest

from models.registry import Registry
from streams.topics import Topics
from tests.e2e.test_classification import worker_env
from tests.helpers import json_values, linkcast_process, read_topic, run_linkcast, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


def test_the_worker_publishes_a_forecast_for_every_bin_once_the_history_is_full(
    kafka_bootstrap, topic_prefix, tmp_path: Path
):
    env = worker_env(kafka_bootstrap, topic_prefix, tmp_path)
    forecaster = Registry(tmp_path / "registry").current("forecaster")
    window = int(forecaster.meta["params"]["window_bins"])
    topics = Topics(topic_prefix)
    assert run_linkcast(["topics", "create"], env).returncode == 0
    with linkcast_process(["worker"], env, tmp_path / "worker.log") as worker:
        result = run_linkcast(
            [
                "simulate",
                "--links",
                "2",
                "--duration",
                str(window + 20),
                "--rate",
                "20",
                "--seed",
                "4",
                "--max",
            ],
            env,
        )
        assert result.returncode == 0, result.stderr

        def by_link() -> dict[str, list[dict]]:
            found: dict[str, list[dict]] = {}
            for f in json_values(read_topic(kafka_bootstrap, topics.forecasts)):
                found.setdefault(f["link"], []).append(f)
            return found

        # the idle timer closes the last bins too, so each link gets 21 or more forecasts
        seen = wait_until(
            lambda: (
                (f := by_link()) and all(len(v) >= 21 for v in f.values()) and len(f) == 2 and f
            ),
            120,
            "forecasts for both links",
        )
        assert worker.poll() is None
    windows = json_values(read_topic(kafka_bootstrap, topics.windows))
    for link, forecasts in seen.items():
        made = sorted(f["made_at_s"] for f in forecasts)
        assert made == [made[0] + k for k in range(len(made))]  # one per bin, none twice
        bin_ends = sorted(w["bin_end_s"] for w in windows if w["link"] == link)
        assert made[0] == bin_ends[window - 1]  # the first bin with a full history
        assert {f["model_version"] for f in forecasts} == {forecaster.name}
        assert all(
            h["lower_bps"] <= h["bps"] <= h["upper_bps"] for f in forecasts for h in f["horizons"]
        )

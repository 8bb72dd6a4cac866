"""The same capture, replayed paced and unpaced into 1 and 4 partitions, gives the same results.

Compared record by record, ignoring only the processing-time fields
(``emitted_at_s``, ``latency_s``): windows, classifications and forecasts. Only
bins that data closed are compared: after the last record, the idle timer
closes empty bins at a pace set by the wall clock, which differs between runs.
"""

import math
from collections import Counter
from pathlib import Path

import pytest

from streams.topics import Topics
from tests.e2e.test_classification import worker_env
from tests.helpers import json_values, linkcast_process, read_topic, run_linkcast, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

PROCESSING_FIELDS = {"emitted_at_s", "latency_s"}


def _canonical(records: list[dict], time_field: str, before_s: float) -> Counter:
    return Counter(
        repr(sorted((k, v) for k, v in r.items() if k not in PROCESSING_FIELDS))
        for r in records
        if r[time_field] < before_s
    )


def test_paced_one_partition_and_unpaced_four_partitions_agree(
    kafka_bootstrap, topic_prefix, tmp_path: Path
):
    capture = tmp_path / "four-links.pcap"
    made = run_linkcast(
        [
            "simulate",
            "--links",
            "4",
            "--duration",
            "90",
            "--rate",
            "30",
            "--seed",
            "9",
            "--pcap",
            str(capture),
        ],
        {},
    )
    assert made.returncode == 0, made.stderr
    runs = {
        name: _run(
            kafka_bootstrap, f"{topic_prefix}{name}", partitions, pace, capture, tmp_path / name
        )
        for name, partitions, pace in (("paced", "1", ["--speed", "20"]), ("max", "4", ["--max"]))
    }
    cut = min(r["cut"] for r in runs.values())
    for kind, time_field in (
        ("windows", "bin_end_s"),
        ("classifications", "ts"),
        ("forecasts", "made_at_s"),
    ):
        paced = _canonical(runs["paced"][kind], time_field, cut)
        unpaced = _canonical(runs["max"][kind], time_field, cut)
        assert sum(paced.values()) > 0, kind
        assert paced == unpaced, (
            f"{kind} differ: {len(paced - unpaced)} only paced, {len(unpaced - paced)} only unpaced"
        )
    assert sum(_canonical(runs["max"]["forecasts"], "made_at_s", cut).values()) >= 4 * 20


def _run(
    bootstrap: str, prefix: str, partitions: str, pace: list[str], capture: Path, home: Path
) -> dict:
    """Replay ``capture`` through a worker of its own; its windows, classes and forecasts."""
    home.mkdir()
    env = worker_env(bootstrap, prefix, home) | {"LINKCAST_PARTITIONS": partitions}
    topics = Topics(prefix)
    assert run_linkcast(["topics", "create"], env).returncode == 0
    with linkcast_process(["worker"], env, home / "worker.log") as worker:
        done = run_linkcast(
            ["replay", str(capture), "--link-map", str(capture.with_suffix(".links.json")), *pace],
            env,
        )
        assert done.returncode == 0, done.stderr
        flows = json_values(read_topic(bootstrap, topics.flows))
        links = {f["link"] for f in flows}
        # every bin the data closes: those ending at or before the last record, less lateness
        data_closed_s = math.floor(max(f["ts"] for f in flows) - 2.0)

        def all_closed() -> bool:
            assert worker.poll() is None, (home / "worker.log").read_text()[-2000:]
            ends = {}
            for w in json_values(read_topic(bootstrap, topics.windows)):
                ends[w["link"]] = max(ends.get(w["link"], 0.0), w["bin_end_s"])
            return all(ends.get(link, 0.0) >= data_closed_s for link in links)

        wait_until(all_closed, 120, f"{prefix} to close every link's bins")
        wait_until(
            lambda: len(json_values(read_topic(bootstrap, topics.classifications))) >= len(flows),
            60,
            f"{prefix} to classify every flow",
        )
    return {
        "windows": json_values(read_topic(bootstrap, topics.windows)),
        "classifications": json_values(read_topic(bootstrap, topics.classifications)),
        "forecasts": json_values(read_topic(bootstrap, topics.forecasts)),
        "cut": data_closed_s,
    }

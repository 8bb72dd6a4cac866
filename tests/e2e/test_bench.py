"""`linkcast bench replay` against the real broker: figures, the last JSON line, the topic."""

import asyncio
import json
import subprocess

import pytest

from streams.admin import delete_topics
from streams.topics import Topics
from tests.helpers import json_values, read_topic, run_linkcast, topic_names, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

TLS2_IP_PACKETS, TLS2_IP_BYTES = 7451, 2630315  # per tshark; see tests/e2e/test_replay.py
REQUIRED = {"bench", "value", "unit", "baseline", "ratio", "flows_per_s", "packets", "flows"}


def bench(bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_linkcast(["bench", "replay", *args], {"LINKCAST_KAFKA_BOOTSTRAP": bootstrap})


def test_bench_replay_prints_its_result_last_and_publishes_every_packet(
    kafka_bootstrap, shared_data, tmp_path
):
    out = tmp_path / "result.json"
    capture = shared_data / "pcap" / "mixed" / "tls2.pcap"
    done = bench(kafka_bootstrap, str(capture), "--out", str(out), "--keep-topic")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    topic = Topics(result["topic_prefix"]).flows
    try:
        assert result.keys() >= REQUIRED
        assert (result["bench"], result["unit"]) == ("replay", "packets/s")
        assert result["packets"] == result["baseline_packets"] == TLS2_IP_PACKETS
        assert result["value"] > 0
        assert result["baseline"] > 0
        assert result["ratio"] == result["value"] / result["baseline"]
        assert f"topic prefix {result['topic_prefix']}" in done.stdout
        saved = json.loads(out.read_text())
        assert {k: saved[k] for k in result} == result  # the file holds the same figures, and more
        assert saved["capture"]["ip_bytes"] == TLS2_IP_BYTES
        records = json_values(read_topic(kafka_bootstrap, topic))
        assert len(records) == result["flows"]
        assert sum(r["packets"] for r in records) == TLS2_IP_PACKETS
        assert sum(r["bytes"] for r in records) == TLS2_IP_BYTES
    finally:
        asyncio.run(delete_topics(kafka_bootstrap, [topic]))


def test_bench_replay_repeats_and_deletes_its_topic(kafka_bootstrap, shared_data, tmp_path):
    capture = shared_data / "pcap" / "mixed" / "tls2.pcap"
    done = bench(kafka_bootstrap, str(capture), "--repeat", "2", "--out", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["repeat"], result["statistic"]) == (2, "median")
    runs = json.loads((tmp_path / "r.json").read_text())["runs"]
    assert [len(runs["linkcast"]), len(runs["nfstream"])] == [2, 2]
    assert {r["packets"] for r in runs["linkcast"]} == {TLS2_IP_PACKETS}
    assert "median of 2 runs" in done.stdout
    topic = Topics(result["topic_prefix"]).flows
    wait_until(lambda: topic not in topic_names(kafka_bootstrap), 30, f"{topic} to be deleted")


def test_bench_stream_times_a_worker_to_its_last_bin_and_its_forecasts(kafka_bootstrap, tmp_path):
    """A small run: 16,000 records over 20 links at 10 a second, 80 s of event time, so
    each link has a full 60-bin history for its last 20 or so bins and is forecast."""
    out = tmp_path / "stream.json"
    plan = ["--records", "16000", "--links", "20", "--partitions", "2", "--timeout", "240"]
    done = run_linkcast(
        ["bench", "stream", *plan, "--out", str(out)],
        {"LINKCAST_KAFKA_BOOTSTRAP": kafka_bootstrap},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["bench"], result["unit"], result["records"]) == ("stream", "records/s", 16000)
    assert result["flows_reader"] == "direct"  # the default under at_least_once
    assert result["value"] > 0
    assert result["ratio"] == result["value"] / result["baseline"]
    saved = json.loads(out.read_text())
    # bins 0 to 79 of each link: the last ones closed by the idle timer
    assert saved["worker_run"]["bins_closed"] >= saved["worker_run"]["expected_bins"] == 20 * 80
    # forecasts at bins 59 to 79 of each link, each matched with the window it was made at
    assert result["forecasts"] >= 20 * 20
    assert 0 <= result["forecast_latency_p50_s"] <= result["forecast_latency_p99_s"]
    assert not [t for t in topic_names(kafka_bootstrap) if t.startswith(result["topic_prefix"])]

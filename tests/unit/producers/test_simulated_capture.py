"""Round trip: simulator -> pcap (`linkcast simulate --pcap`) -> the replay's flow meter.

The simulator computes its flow records from its own packets, independently
of producers.flowmeter; the capture it writes must meter back into the very
same records. So the capture path is checked against known truth, and tshark
reads the same file to the same IP byte count.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from producers.linkmap import load_link_map
from producers.pcapwriter import write_pcap
from producers.replay import ReplaySource, ReplayStats, records_of
from producers.simulator import SimulationConfig, simulate, simulate_packets
from streams.schemas import FlowRecord

REPO = Path(__file__).resolve().parents[3]
# The meter accumulates means and deviations incrementally, the simulator in one
# pass; after rounding the two can differ in the last decimal kept.
ROUNDED = {
    "pkt_len_mean": 2e-3,
    "pkt_len_std": 2e-3,
    "iat_min_s": 2e-6,
    "iat_mean_s": 2e-6,
    "iat_max_s": 2e-6,
    "iat_std_s": 2e-6,
}


def comparable(r: FlowRecord) -> str:
    """The record without its label (a capture has none) and the rounded statistics."""
    return json.dumps(r.model_dump(mode="json", exclude={"label", *ROUNDED}), sort_keys=True)


def test_a_simulated_capture_meters_back_into_the_simulated_records(tmp_path, tshark):
    args = ["--links", "3", "--duration", "15", "--rate", "30", "--seed", "2"]
    capture = tmp_path / "sim.pcap"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "deploy",
            "simulate",
            *args,
            "--attack-every",
            "10",
            "--pcap",
            str(capture),
        ],
        cwd=REPO,
        env={**os.environ},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    links = tmp_path / "sim.links.json"
    assert f"--link-map {links}" in result.stdout

    truth = list(
        simulate(SimulationConfig(links=3, duration_s=15, rate=30, seed=2, attack_every_s=10))
    )
    stats = ReplayStats()
    source = ReplaySource(capture, load_link_map(links), csv_link="unused")
    metered = list(records_of(source, stats))

    assert stats.capture.bad == 0
    assert stats.capture.non_ip == 0
    assert stats.capture.ip_bytes == sum(r.bytes for r in truth)
    assert stats.capture.ip_packets == sum(r.packets for r in truth)
    assert sorted(map(comparable, metered)) == sorted(map(comparable, truth))
    by_key = {comparable(r): r for r in truth}
    for r in metered:
        expected = by_key[comparable(r)]
        for name, tolerance in ROUNDED.items():
            a, b = getattr(r, name), getattr(expected, name)
            assert (a is None) == (b is None), name
            assert a is None or math.isclose(a, b, abs_tol=tolerance), (name, a, b)

    seen = subprocess.run(
        [tshark, "-r", str(capture), "-T", "fields", "-e", "ip.len"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lengths = [int(x) for x in seen.stdout.split()]
    assert sum(lengths) == stats.capture.ip_bytes
    assert len(lengths) == stats.capture.ip_packets


def test_too_many_links_for_vlans_is_a_clear_error(tmp_path):
    from producers.exceptions import CaptureError

    config = SimulationConfig(links=5000, duration_s=1, rate=1)
    with pytest.raises(CaptureError, match="at most 4094 links"):
        write_pcap(tmp_path / "x.pcap", simulate_packets(config), config.links)

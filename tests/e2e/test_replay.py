"""`linkcast replay` against the real broker: paced and unpaced runs publish the same records."""

import json
import os
import subprocess
import sys

import pytest

from streams.topics import Topics
from tests.helpers import read_topic, run_linkcast

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


def replay(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_linkcast(["replay", *args], env)


def test_replay_at_speed_and_at_max_publish_the_same_records(
    kafka_bootstrap, shared_data, topic_prefix
):
    capture = shared_data / "pcap" / "mixed" / "tls2.pcap"  # 146 s of traffic: ~3 s at 50x
    published = {}
    for mode in (["--speed", "50"], ["--max"]):
        prefix = f"{topic_prefix}{mode[0].strip('-')}"
        env = {"LINKCAST_KAFKA_BOOTSTRAP": kafka_bootstrap, "LINKCAST_TOPIC_PREFIX": prefix}
        subprocess.run(
            [sys.executable, "-m", "deploy", "topics", "create"],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        done = replay(env, str(capture), "--link", "lab", *mode)
        assert done.returncode == 0, done.stdout + done.stderr
        assert (
            "7451 IP packets (2630315 bytes), 0 non-IP skipped, 0 bad packets skipped"
            in done.stdout
        )
        messages = read_topic(kafka_bootstrap, Topics(prefix).flows)
        published[mode[0]] = [(m.key, m.value, m.timestamp) for m in messages]
    paced, unpaced = published["--speed"], published["--max"]
    assert paced == unpaced
    records = [json.loads(value) for _, value, _ in unpaced]
    assert sum(r["bytes"] for r in records) == 2630315
    assert sum(r["packets"] for r in records) == 7451
    assert all(key == b"lab" for key, _, _ in unpaced)
    assert all(ts == round(json.loads(v)["ts"] * 1000) for _, v, ts in unpaced)  # event time


def test_a_bad_file_gets_a_clear_message_and_exit_code(kafka_bootstrap, tmp_path, topic_prefix):
    env = {"LINKCAST_KAFKA_BOOTSTRAP": kafka_bootstrap, "LINKCAST_TOPIC_PREFIX": topic_prefix}
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"GIF89a not a capture")
    done = replay(env, str(junk), "--max")
    assert done.returncode == 1
    assert "is not a pcap or pcapng capture" in done.stderr
    csv_file = tmp_path / "flows.csv"
    csv_file.write_text("a,b,c\n1,2,3\n")
    done = replay(env, str(csv_file), "--max")
    assert done.returncode == 1
    assert "'Src IP'" in done.stderr or "'sIPs'" in done.stderr

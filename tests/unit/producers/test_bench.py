"""`linkcast bench replay` without a broker: its arithmetic, and bad input refused before Kafka."""

import gzip
import struct
import sys

import pytest

from deploy.cli import build_parser, main
from producers.bench import Run, median_run, summary
from producers.exceptions import BenchError

EMPTY_PCAP = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # header, no packets


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    # Nothing here may reach Kafka: if it tried, it would fail on this address within 0.5 s
    # with a different message than the one each test expects.
    monkeypatch.setenv("LINKCAST_KAFKA_BOOTSTRAP", "127.0.0.1:9")
    monkeypatch.setenv("LINKCAST_BROKER_TIMEOUT_S", "0.5")


def test_the_median_run_is_the_middle_one_by_time_and_the_slower_of_two():
    fast, middle, slow = Run(100, 10, 1.0), Run(100, 10, 2.0), Run(100, 10, 9.0)
    assert median_run([slow, fast, middle]) == middle
    assert median_run([slow, fast]) == slow
    assert median_run([fast]) == fast


def test_summary_gives_rates_and_the_ratio_of_linkcast_to_nfstream(tmp_path):
    result = summary(tmp_path / "x.pcap", Run(7451, 430, 0.5), Run(7451, 430, 0.1), repeat=3)
    assert (result["bench"], result["unit"]) == ("replay", "packets/s")
    assert result["statistic"] == "median"
    assert (result["value"], result["baseline"]) == (14902.0, 74510.0)
    assert result["ratio"] == result["value"] / result["baseline"]
    assert result["ratio"] == pytest.approx(0.2)
    assert (result["flows_per_s"], result["baseline_flows_per_s"]) == (860.0, 4300.0)
    assert (result["packets"], result["flows"], result["repeat"]) == (7451, 430, 3)


def test_summary_refuses_a_capture_without_ip_packets(tmp_path):
    with pytest.raises(BenchError, match="no IP packets"):
        summary(tmp_path / "arp.pcap", Run(0, 0, 0.1), Run(0, 0, 0.1), repeat=1)


def test_bench_is_a_group_whose_replay_has_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["bench", "replay", "--help"])
    assert exit_info.value.code == 0
    assert "--repeat" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["bench"])
    assert exit_info.value.code == 2
    assert "required: BENCH" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("absent.pcap", None, "does not exist or is not a file"),
        ("junk.pcap", b"GIF89a not a capture", "is not a pcap or pcapng capture"),
        ("flows.csv", b"a,b\n1,2\n", "is a flow CSV; bench replay measures captures"),
        ("cap.pcap.gz", gzip.compress(EMPTY_PCAP), "is gzip-compressed and nfstream reads only"),
    ],
)
def test_bad_input_gets_one_clear_line_and_exit_1(tmp_path, capsys, name, content, says):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    assert main(["bench", "replay", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"linkcast bench: {path}")
    assert says in err
    assert "\n" not in err


def test_without_nfstream_there_is_no_baseline_and_it_says_so(tmp_path, capsys, monkeypatch):
    path = tmp_path / "empty.pcap"
    path.write_bytes(EMPTY_PCAP)
    monkeypatch.setitem(sys.modules, "nfstream", None)  # import nfstream now raises ImportError
    assert main(["bench", "replay", str(path)]) == 1
    err = capsys.readouterr().err
    assert "linkcast bench: nfstream is not installed" in err
    assert "pip install -e '.[dev]'" in err

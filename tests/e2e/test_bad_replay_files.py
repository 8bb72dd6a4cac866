"""`linkcast replay` of damaged files, made here from the real ones in ../shared/data.

Hypothesis picks the damage: rows of a CICFlowMeter CSV made unreadable in
six ways, captures cut short, bytes overwritten, a gzip stream broken. Each
run must end with a clear summary and no traceback, and the summary must
account for every input row or frame: published (the flows topic holds
exactly those records), non-IP, or rejected as bad. The damaged copies live
in tmp_path; nothing is copied into the repository.
"""

import gzip
import json
import re
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from streams.topics import Topics
from tests.helpers import read_topic, run_linkcast

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

CSV_SOURCE = Path("flows") / "cicids2017" / "Botnet_736.csv"
PCAP_SOURCE = Path("pcap") / "ndpi" / "chrome.pcap"
PCAPNG_SOURCE = Path("pcap") / "ndpi" / "anydesk.pcapng"

ROWS_LINE = re.compile(r"read (\d+) rows: (\d+) non-IP flows skipped, (\d+) bad rows skipped")
FRAMES_LINE = re.compile(
    r"read (\d+) frames: (\d+) IP packets \((\d+) bytes\), (\d+) non-IP skipped, "
    r"(\d+) bad packets skipped(, capture truncated)?"
    r"(?: \((\d+) bytes after the last whole frame not read\))?"
)
PUBLISHED_LINE = re.compile(r"published (\d+) records \((\d+) bytes, (\d+) packets\)")


def draw_once(strategy: st.SearchStrategy[Any], at: int) -> Any:
    """One example of ``strategy``, the same on every run (hypothesis seed ``at``)."""
    found: list[Any] = []

    @seed(at)
    @settings(max_examples=3, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def keep(value: Any) -> None:
        found.append(value)

    keep()
    return found[-1]  # the first example hypothesis tries is the simplest one


def replay(env: dict[str, str], path: Path) -> subprocess.CompletedProcess[str]:
    done = run_linkcast(["replay", str(path), "--max", "--link", "lab"], env)
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done


def flows_published(bootstrap: str, prefix: str) -> tuple[int, int, int]:
    """(records, bytes, packets) on the flows topic."""
    records = [json.loads(m.value) for m in read_topic(bootstrap, Topics(prefix).flows)]
    return len(records), sum(r["bytes"] for r in records), sum(r["packets"] for r in records)


@pytest.fixture
def env(kafka_bootstrap: str, topic_prefix: str) -> dict[str, str]:
    env = {"LINKCAST_KAFKA_BOOTSTRAP": kafka_bootstrap, "LINKCAST_TOPIC_PREFIX": topic_prefix}
    assert run_linkcast(["topics", "create"], env).returncode == 0
    return env


# ---- a flow CSV with damaged rows ------------------------------------------------------

DAMAGE = {
    "a word for a number": lambda cells, col: _set(cells, col["Flow Duration"], "fast"),
    "negative packets": lambda cells, col: _set(cells, col["Total Fwd Packet"], "-1000000000"),
    "a bad address": lambda cells, col: _set(cells, col["Src IP"], "192.168.10.300"),
    "cells missing": lambda cells, col: cells[:6],
    "bytes that are not UTF-8": lambda cells, col: _set(cells, col["Label"], "\udcff\udcfe"),
    "a cell over the size limit": lambda cells, col: [*cells, '"' + "9" * 200_000 + '"'],
}


def _set(cells: list[str], index: int, value: str) -> list[str]:
    return [value if i == index else c for i, c in enumerate(cells)]


def test_a_csv_with_damaged_rows_accounts_for_every_row(env, shared_data: Path, tmp_path: Path):
    text = (shared_data / CSV_SOURCE).read_text(encoding="utf-8")
    header, *rows = [line for line in text.splitlines() if line]
    damage = draw_once(
        st.dictionaries(
            st.integers(0, len(rows) - 1),
            st.sampled_from(sorted(DAMAGE)),
            min_size=len(rows) // 10,
            max_size=len(rows) // 10,
        ),
        at=4,
    )
    assert set(damage.values()) == set(DAMAGE), f"not every kind of damage was drawn: {damage}"
    columns = {name: i for i, name in enumerate(header.split(","))}
    lines = [header] + [
        ",".join(DAMAGE[damage[i]](row.split(","), columns)) if i in damage else row
        for i, row in enumerate(rows)
    ]
    damaged = tmp_path / "damaged.csv"
    damaged.write_bytes("\r\n".join(lines).encode("utf-8", errors="surrogateescape") + b"\r\n")

    done = replay(env, damaged)
    assert done.returncode == 3, done.stdout + done.stderr  # 3: bad rows were skipped
    read, non_ip, bad = map(int, ROWS_LINE.search(done.stdout).groups())  # type: ignore[union-attr]
    records, nbytes, packets = map(int, PUBLISHED_LINE.search(done.stdout).groups())  # type: ignore[union-attr]
    assert read == len(rows)
    assert bad == len(damage)
    assert records + non_ip + bad == read
    assert flows_published(env["LINKCAST_KAFKA_BOOTSTRAP"], env["LINKCAST_TOPIC_PREFIX"]) == (
        records,
        nbytes,
        packets,
    )
    first = min(damage) + 2  # line numbers count the header as line 1
    assert f"line {first}: " in done.stderr, done.stderr


# ---- damaged captures ----------------------------------------------------------------


def complete_pcap_frames(data: bytes) -> tuple[int, int]:
    """Frames of a classic little-endian pcap that are whole in ``data``, and the bytes
    after the last of them (an independent count)."""
    assert data[:4] == b"\xd4\xc3\xb2\xa1", "the test expects a little-endian microsecond pcap"
    at, frames = 24, 0
    while at + 16 <= len(data):
        (caplen,) = struct.unpack("<I", data[at + 8 : at + 12])
        if at + 16 + caplen > len(data):
            break
        at += 16 + caplen
        frames += 1
    return frames, len(data) - at


def _check_capture_summary(
    done: subprocess.CompletedProcess[str], env: dict[str, str]
) -> tuple[int, int]:
    """The summary's frames are published, non-IP or bad, and the topic holds what it says;
    returns the frames read and the bytes the summary says were left unread."""
    match = FRAMES_LINE.search(done.stdout)
    assert match is not None, done.stdout + done.stderr
    frames, ip_packets, ip_bytes, non_ip, bad = map(int, match.groups()[:5])
    assert frames == ip_packets + non_ip + bad
    records, nbytes, packets = map(int, PUBLISHED_LINE.search(done.stdout).groups())  # type: ignore[union-attr]
    assert (nbytes, packets) == (ip_bytes, ip_packets)  # every IP packet is in one record
    got = flows_published(env["LINKCAST_KAFKA_BOOTSTRAP"], env["LINKCAST_TOPIC_PREFIX"])
    assert got == (records, nbytes, packets)
    truncated = match.group(6) is not None
    expected_code = 3 if bad or truncated else 0
    assert done.returncode == expected_code, done.stdout + done.stderr
    return frames, int(match.group(7) or 0)


def test_a_capture_cut_short_publishes_its_whole_frames(env, shared_data: Path, tmp_path: Path):
    data = (shared_data / PCAP_SOURCE).read_bytes()
    cut = draw_once(st.integers(len(data) // 4, len(data) - 1), at=5)
    damaged = tmp_path / "cut.pcap"
    damaged.write_bytes(data[:cut])
    done = replay(env, damaged)
    frames, unread = complete_pcap_frames(data[:cut])
    assert _check_capture_summary(done, env) == (frames, unread)
    assert unread > 0, "the draw should cut inside a frame"
    assert "capture truncated" in done.stdout


def test_a_capture_with_overwritten_bytes_accounts_for_every_frame(
    env, shared_data: Path, tmp_path: Path
):
    data = bytearray((shared_data / PCAPNG_SOURCE).read_bytes())
    # Past the section and interface headers: a file damaged there is refused whole
    # (test_a_broken_gzip_capture_and_non_captures_get_a_clear_answer).
    offsets = st.integers(512, len(data) - 1)
    writes = draw_once(
        st.lists(st.tuples(offsets, st.binary(min_size=1, max_size=8)), min_size=20, max_size=20),
        at=6,
    )
    for at, junk in writes:
        data[at : at + len(junk)] = junk
    damaged = tmp_path / "overwritten.pcapng"
    damaged.write_bytes(bytes(data))
    done = replay(env, damaged)
    frames, unread = _check_capture_summary(done, env)
    if "capture truncated" in done.stdout:  # a block length overwritten: the rest is unread
        assert 0 < unread < len(data)
    print(f"overwritten pcapng: {frames} frames, {unread} bytes unread")


def test_a_broken_gzip_capture_and_non_captures_get_a_clear_answer(
    env, shared_data: Path, tmp_path: Path
):
    packed = bytearray(gzip.compress((shared_data / PCAP_SOURCE).read_bytes()))
    middle = len(packed) // 2
    packed[middle : middle + 64] = bytes(64)
    broken = tmp_path / "broken.pcap.gz"
    broken.write_bytes(bytes(packed))
    done = replay(env, broken)
    assert done.returncode == 3, done.stdout + done.stderr
    _check_capture_summary(done, env)

    for name, content, says in [
        ("empty.pcap", b"", "is not a pcap or pcapng capture"),
        ("header-only.pcap", (shared_data / PCAP_SOURCE).read_bytes()[:10], "damaged"),
        ("noise.pcapng", bytes(range(256)) * 8, "is not a pcap or pcapng capture"),
        ("binary.csv", bytes(range(256)) * 8, "is not a known flow CSV"),
        ("latin1.csv", "Src IP,Dst IP,Étiquette\n1,2,3\n".encode("latin-1"), "not UTF-8"),
    ]:
        path = tmp_path / name
        path.write_bytes(content)
        done = replay(env, path)
        assert done.returncode == 1, (name, done.stdout, done.stderr)
        assert says in done.stderr, (name, done.stderr)

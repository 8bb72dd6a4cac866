"""Every real capture in ../shared/data/pcap, metered and checked against tshark's own reading.

The invariant: the bytes and packets of all flow records of a capture, plus
the IP packets skipped for a broken clock, equal the IPv4 and IPv6 bytes
(total length) and packets that tshark finds in it.
"""

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from producers.capture import CaptureStats, read_packets
from producers.exceptions import CaptureError
from producers.flowmeter import FlowMeter, MeterConfig
from producers.linkmap import single_link
from producers.ndpi import read_labels
from producers.replay import ReplaySource, ReplayStats, records_of
from streams.schemas import TrafficClass

# Files whose readings differ for reasons we know and accept, and why.
KNOWN_DIFFERENCES = {
    "ajp.pcap": "12 frames in Cisco FabricPath (ethertype 0x8903), which linkcast does not decode",
    "fuzz-2006-06-26-2594.pcap": "deliberately corrupted by fuzzing; readers disagree on garbage",
    "fuzz-2006-09-29-28586.pcap": "deliberately corrupted by fuzzing; readers disagree on garbage",
}
REFUSED = {
    "someip_sd_sample.pcap": "link type 192, which linkcast cannot read",  # PPI
    "fuzz-2021-10-13.pcap": "damaged before its first packet",  # a fuzzed header
}


def captures(root: Path) -> list[Path]:
    return sorted(p for p in (root / "pcap").rglob("*") if p.suffix in {".pcap", ".pcapng", ".cap"})


def tshark_totals(tshark: str, path: Path) -> tuple[int, int]:
    """IP packets and bytes per tshark: outermost IPv4 total length, or IPv6 40 + payload length."""
    fields = ["-e", "frame.protocols", "-e", "ip.len", "-e", "ipv6.plen"]
    out = subprocess.run(
        [tshark, "-r", str(path), "-n", "-T", "fields", *fields, "-E", "occurrence=f"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    packets = total = 0
    for line in out.splitlines():
        protocols, ip_len, plen = ([*line.split("\t"), "", ""])[:3]
        outer = next((p for p in protocols.split(":") if p in ("ip", "ipv6")), None)
        if outer == "ip" and ip_len:
            packets, total = packets + 1, total + int(ip_len)
        elif outer == "ipv6" and plen:
            packets, total = packets + 1, total + 40 + int(plen)
    return packets, total


def metered(path: Path) -> tuple[list, CaptureStats]:
    stats = CaptureStats()
    meter = FlowMeter(MeterConfig(), single_link("x"))
    records = []
    latest = float("-inf")
    stats.in_order = True  # type: ignore[attr-defined]  # test-only note: packets never went back
    for packet in read_packets(path, stats):
        if packet.ts < latest:
            stats.in_order = False  # type: ignore[attr-defined]
        latest = max(latest, packet.ts)
        records.extend(meter.add(packet))
    records.extend(meter.flush())
    return records, stats


def test_every_capture_meters_to_exactly_the_ip_traffic_tshark_reads(shared_data, tshark):
    files = [p for p in captures(shared_data) if p.name not in REFUSED]
    assert len(files) > 300

    def check(path: Path) -> str | None:
        records, stats = metered(path)
        ours = (
            sum(r.packets for r in records) + stats.bad_ip_packets,
            sum(r.bytes for r in records) + stats.bad_ip_bytes,
        )
        theirs = tshark_totals(tshark, path)
        in_order = [r.ts for r in records] == sorted(r.ts for r in records)
        if stats.in_order and not in_order:
            return f"{path.name}: packets in order but records out of event-time order"
        if ours != theirs and path.name not in KNOWN_DIFFERENCES:
            return f"{path.name}: ours {ours} != tshark {theirs} (skipped: {stats.skipped_reasons})"
        if ours == theirs and path.name in KNOWN_DIFFERENCES:
            return f"{path.name} now agrees with tshark: drop it from KNOWN_DIFFERENCES"
        return None

    with ThreadPoolExecutor(max_workers=4) as pool:
        problems = [p for p in pool.map(check, files) if p]
    assert problems == []


@pytest.mark.parametrize(("name", "says"), sorted(REFUSED.items()))
def test_captures_that_cannot_be_read_are_refused_with_the_reason(shared_data, name, says):
    (path,) = [p for p in captures(shared_data) if p.name == name]
    with pytest.raises(CaptureError, match=says):
        metered(path)


SAMPLE = ["1kxun.pcap", "443-chrome.pcap", "dns_long_domainname.pcap", "bittorrent.pcap",
          "dropbox.pcap", "quic.pcap", "youtube_quic.pcap", "teams.pcap"]  # fmt: skip


@pytest.mark.parametrize("name", SAMPLE)
def test_ndpi_categories_label_the_flows_of_a_capture(shared_data, name):
    path = shared_data / "pcap" / "ndpi" / name
    labels = read_labels(path.with_name(name + ".out"))
    stats = ReplayStats()
    records = list(records_of(ReplaySource(path, single_link("x"), "x"), stats))
    labelled = [r for r in records if r.label is not None]
    # nDPI and linkcast cut flows with different timeouts; most conversations still meet
    assert len(labelled) >= 0.8 * len(records), f"{len(labelled)} of {len(records)} labelled"
    assert {r.label for r in labelled} <= set(labels.values())
    assert stats.labelled == len(labelled)


def test_dns_traffic_is_labelled_dns(shared_data):
    path = shared_data / "pcap" / "ndpi" / "dns_long_domainname.pcap"
    records = list(records_of(ReplaySource(path, single_link("x"), "x"), ReplayStats()))
    assert records
    assert {r.label for r in records if r.dport == 53 or r.sport == 53} == {TrafficClass.DNS}


def test_a_truncated_capture_keeps_its_good_packets_and_says_so(shared_data, tmp_path):
    whole = (shared_data / "pcap" / "mixed" / "tls2.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[: len(whole) // 2 + 7])  # ends inside a packet
    records, stats = metered(cut)
    assert stats.truncated
    assert 0 < stats.ip_packets < 7451
    assert sum(r.packets for r in records) == stats.ip_packets


def test_a_gzip_capture_reads_like_the_plain_one(shared_data, tmp_path):
    import gzip

    plain = shared_data / "pcap" / "mixed" / "example.pcap"
    packed = tmp_path / "example.pcap.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert metered(packed)[0] == metered(plain)[0]


def test_a_file_that_is_not_a_capture_is_refused(tmp_path):
    text = tmp_path / "notes.pcap"
    text.write_text("these are not packets\n")
    with pytest.raises(CaptureError, match="is not a pcap or pcapng capture"):
        metered(text)

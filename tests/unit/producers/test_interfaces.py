"""Capture interfaces: pcapng index and name reach each packet; the link map routes by them."""

import json
import struct

import dpkt

from producers.capture import CaptureStats, read_packets
from producers.linkmap import load_link_map

LINKTYPE_RAW = 101
SHB, IDB, EPB = 0x0A0D0D0A, 1, 6
IF_NAME = 2


def block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def interface(name: str | None) -> bytes:
    options = b""
    if name is not None:
        value = name.encode()
        options = struct.pack("<HH", IF_NAME, len(value)) + value + b"\0" * (-len(value) % 4)
        options += struct.pack("<HH", 0, 0)  # opt_endofopt
    return block(IDB, struct.pack("<HHI", LINKTYPE_RAW, 0, 65535) + options)


def packet(iface: int, ts_us: int, sport: int) -> bytes:
    udp = dpkt.udp.UDP(sport=sport, dport=53, data=b"query")
    udp.ulen = len(udp)
    frame = bytes(dpkt.ip.IP(src=b"\x0a\0\0\x01", dst=b"\x0a\0\0\x02", p=17, data=udp))
    head = struct.pack("<IIIII", iface, ts_us >> 32, ts_us & 0xFFFFFFFF, len(frame), len(frame))
    return block(EPB, head + frame)


def pcapng(tmp_path, blocks: list[bytes]):
    section = block(SHB, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    path = tmp_path / "two-interfaces.pcapng"
    path.write_bytes(section + b"".join(blocks))
    return path


T0_US = 1_700_000_000 * 1_000_000


def test_each_packet_carries_its_interface_index_and_name(tmp_path):
    path = pcapng(
        tmp_path,
        [interface("eth1"), interface(None), packet(0, T0_US, 1000), packet(1, T0_US + 5, 1001)],
    )
    stats = CaptureStats()
    packets = list(read_packets(path, stats))
    assert [(p.interface, p.interface_name, p.sport) for p in packets] == [
        (0, "eth1", 1000),
        (1, None, 1001),
    ]
    assert (stats.ip_packets, stats.bad) == (2, 0)


def test_the_link_map_routes_by_interface_name_and_index(tmp_path):
    path = pcapng(
        tmp_path,
        [interface("eth1"), interface("eth2"), packet(0, T0_US, 1000), packet(1, T0_US, 1001)],
    )
    rules = tmp_path / "links.json"
    rules.write_text(
        json.dumps({"default": "other", "rules": [{"interface": "eth2", "link": "lan"}]})
    )
    link_of = load_link_map(rules)
    assert [link_of(p) for p in read_packets(path, CaptureStats())] == ["other", "lan"]
    rules.write_text(json.dumps({"default": "other", "rules": [{"interface": 0, "link": "wan"}]}))
    link_of = load_link_map(rules)
    assert [link_of(p) for p in read_packets(path, CaptureStats())] == ["wan", "other"]


def test_a_new_section_starts_its_interfaces_again(tmp_path):
    second = block(SHB, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    first_section = [interface("eth1"), packet(0, T0_US, 1000)]
    path = pcapng(tmp_path, [*first_section, second, interface("wlan0"), packet(0, T0_US, 1001)])
    names = [(p.interface, p.interface_name) for p in read_packets(path, CaptureStats())]
    assert names == [(0, "eth1"), (0, "wlan0")]

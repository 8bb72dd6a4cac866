"""Write simulated packets as a classic pcap file (Ethernet, 802.1Q tag per link, IPv4).

Only the headers are captured (a snap length, as many real captures have):
each frame holds Ethernet, the VLAN tag, the IPv4 header with the packet's
real total length and a TCP or UDP header, and its original length says how
long the packet was on the wire. The link of a packet is its VLAN id (link
number + 1), and ``link_map`` gives the matching ``--link-map`` rules.
"""

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from producers.exceptions import CaptureError
from producers.simulator import TCP, SimPacket

PCAP_MAGIC_US = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
SNAPLEN = 128
MAX_VLAN = 4094
ETH_8021Q, ETH_IPV4 = 0x8100, 0x0800


@dataclass
class PcapSummary:
    packets: int = 0
    ip_bytes: int = 0


def vlan_of(link: int) -> int:
    """The 802.1Q VLAN id that carries link number ``link``."""
    return link + 1


def link_map(names: list[str]) -> dict[str, Any]:
    """The ``--link-map`` document that maps the file's VLANs back to link names."""
    return {
        "default": "unmapped",
        "rules": [{"vlan": vlan_of(i), "link": name} for i, name in enumerate(names)],
    }


def write_pcap(path: Path, packets: Iterable[SimPacket], links: int) -> PcapSummary:
    """Write ``packets`` (in time order) to ``path``; return what was written."""
    if links > MAX_VLAN:
        raise CaptureError(
            f"a capture can carry at most {MAX_VLAN} links (one VLAN each); asked for {links}"
        )
    summary = PcapSummary()
    try:
        with path.open("wb") as out:
            out.write(
                struct.pack("<IHHiIII", PCAP_MAGIC_US, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)
            )
            for p in packets:
                frame = _frame(p)
                seconds, micros = divmod(p.t_us, 1_000_000)
                wire = _IP_OFFSET + p.ip_len  # the frame's length on the wire
                out.write(struct.pack("<IIII", seconds, micros, len(frame), wire))
                out.write(frame)
                summary.packets += 1
                summary.ip_bytes += p.ip_len
    except OSError as exc:
        raise CaptureError(f"cannot write {path}: {exc.strerror or exc}") from None
    return summary


_IP_OFFSET = 18  # Ethernet (14) + 802.1Q tag (4)


def _frame(p: SimPacket) -> bytes:
    vlan = vlan_of(p.link)
    ethernet = _mac(p.dst) + _mac(p.src) + struct.pack("!HHH", ETH_8021Q, vlan & 0x0FFF, ETH_IPV4)
    src, dst = _ipv4(p.src), _ipv4(p.dst)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, p.ip_len, 0, 0x4000, 64, p.proto, 0, src, dst)
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    if p.proto == TCP:
        transport = struct.pack(
            "!HHIIBBHHH", p.sport, p.dport, 0, 0, 5 << 4, p.tcp_flags, 65535, 0, 0
        )
    else:
        transport = struct.pack("!HHHH", p.sport, p.dport, max(8, p.ip_len - 20), 0)
    return ethernet + header + transport


def _ipv4(text: str) -> bytes:
    return bytes(int(part) for part in text.split("."))


def _mac(address: str) -> bytes:
    """A locally administered MAC made from an IPv4 address (02:00 + the address)."""
    return b"\x02\x00" + _ipv4(address)


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF

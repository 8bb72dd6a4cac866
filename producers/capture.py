"""Reading captures: pcap, pcapng and their gzip forms, frame by frame, down to the IP packet.

``read_packets`` yields one ``Packet`` per IPv4 or IPv6 packet and counts what it
skips in a ``CaptureStats``: non-IP frames (ARP, STP, LLDP, ...), frames too
damaged to decode, frames of link types linkcast cannot read, and IP packets
whose timestamp is outside 1970..2100 (a clock fault). ``ip_len`` is the IP
total length (IPv4 total length field, IPv6 40 + payload length): the IPFIX
octetDeltaCount of the packet. ``interface`` and ``interface_name`` say which
capture interface saw the packet, as the file tells it (see producers.pcapfile).
"""

import gzip
import itertools
import logging
import socket
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

import dpkt

from producers.exceptions import CaptureError
from producers.pcapfile import Frame, TruncatedCaptureError, read_pcap, read_pcapng
from streams.schemas import MAX_TS_S

log = logging.getLogger(__name__)

PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"

# Link types (https://www.tcpdump.org/linktypes.html) this reader understands.
LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_PPP, LINKTYPE_RAW, LINKTYPE_LOOP = 0, 1, 9, 101, 108
LINKTYPE_LINUX_SLL, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL2 = 113, 228, 229, 276
DLT_RAW_ALIASES = {12, 14}  # DLT_RAW on some BSDs and OpenBSD
SUPPORTED = {
    LINKTYPE_NULL: "BSD loopback",
    LINKTYPE_ETHERNET: "Ethernet",
    LINKTYPE_PPP: "PPP",
    LINKTYPE_RAW: "raw IP",
    LINKTYPE_LOOP: "OpenBSD loopback",
    LINKTYPE_LINUX_SLL: "Linux cooked v1",
    LINKTYPE_IPV4: "raw IPv4",
    LINKTYPE_IPV6: "raw IPv6",
    LINKTYPE_LINUX_SLL2: "Linux cooked v2",
}

TCP, UDP = 6, 17


@dataclass(frozen=True, slots=True)
class Packet:
    """The parts of one IP packet a flow meter needs."""

    ts: float
    interface: int
    src: str
    dst: str
    proto: int
    sport: int
    dport: int
    ip_len: int
    tcp_flags: int
    vlan: int | None
    interface_name: str | None = None  # pcapng if_name; None in a classic pcap


@dataclass
class CaptureStats:
    """What a capture held and what was skipped, for the summary and the exit code."""

    frames: int = 0
    ip_packets: int = 0
    ip_bytes: int = 0
    non_ip: int = 0
    bad: int = 0
    bad_ip_packets: int = 0  # IP packets among the bad ones (bad timestamps)
    bad_ip_bytes: int = 0
    truncated: bool = False
    # Where reading stopped in a truncated or corrupt capture: the bytes of the file
    # after its last whole frame, which were not read (None: not known, as in a gzip).
    unread_bytes: int | None = None
    skipped_reasons: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, bad: bool) -> None:
        if bad:
            self.bad += 1
        else:
            self.non_ip += 1
        self.skipped_reasons[reason] = self.skipped_reasons.get(reason, 0) + 1


def open_capture(path: Path) -> tuple[IO[bytes], str]:
    """Open ``path`` (decompressing gzip) and tell its format: 'pcap' or 'pcapng'."""
    try:
        raw: IO[bytes] = path.open("rb")  # the caller closes the stream
    except OSError as exc:
        raise CaptureError(f"cannot open {path}: {exc.strerror}") from exc
    head = raw.read(4)
    raw.seek(0)
    stream: IO[bytes] = raw
    if head[:2] == GZIP_MAGIC:
        raw.close()
        # gzip.open owns the file it opens and closes it with the stream (a GzipFile
        # over a file object would leave that file open).
        stream = cast(IO[bytes], gzip.open(path, "rb"))  # noqa: SIM115  # the caller closes it
        try:
            head = stream.read(4)
        except (OSError, EOFError, zlib.error) as exc:
            stream.close()
            raise CaptureError(
                f"{path} looks gzip-compressed but does not decompress: {exc}"
            ) from exc
        stream.seek(0)
    if head in PCAP_MAGICS:
        return stream, "pcap"
    if head == PCAPNG_MAGIC:
        return stream, "pcapng"
    stream.close()
    raise CaptureError(
        f"{path} is not a pcap or pcapng capture (it starts with {head.hex() or 'nothing'}); "
        "flow CSVs need the .csv suffix"
    )


def _first_frame(path: Path, frames: Iterator[Frame]) -> list[Frame]:
    """The first frame, read eagerly: a file whose first link type is unknown is refused whole."""
    try:
        first = next(frames)
    except StopIteration:
        return []
    except TruncatedCaptureError as exc:
        raise CaptureError(
            f"{path}: the capture is damaged before its first packet: {exc}"
        ) from exc
    linktype = LINKTYPE_RAW if first[2] in DLT_RAW_ALIASES else first[2]
    if linktype not in SUPPORTED:
        names = ", ".join(f"{v} ({k})" for k, v in SUPPORTED.items())
        raise CaptureError(
            f"{path} has link type {linktype}, which linkcast cannot read; supported: {names}"
        )
    return [first]


def read_packets(path: Path, stats: CaptureStats) -> Iterator[Packet]:
    """Yield the IP packets of the capture at ``path``, counting everything into ``stats``."""
    stream, kind = open_capture(path)
    with stream:
        frames = read_pcap(stream) if kind == "pcap" else read_pcapng(stream)
        first = _first_frame(path, frames)
        frames = itertools.chain(first, frames)
        warned: set[int] = set()
        size = None if kind_is_gzip(stream) else path.stat().st_size
        while True:
            read_up_to = stream.tell()  # the end of the last whole frame's record or block
            try:
                interface, interface_name, linktype, ts, buf = next(frames)
            except StopIteration:
                return
            except (
                TruncatedCaptureError,
                dpkt.NeedData,
                dpkt.UnpackError,
                struct.error,
                EOFError,
                OSError,
                zlib.error,  # a gzip capture whose compressed data is damaged
            ) as exc:
                stats.truncated = True
                if size is not None:
                    stats.unread_bytes = max(0, size - read_up_to)
                log.warning(
                    "%s is truncated or corrupt after %d frames: %s", path, stats.frames, exc
                )
                return
            stats.frames += 1
            linktype = LINKTYPE_RAW if linktype in DLT_RAW_ALIASES else linktype
            if linktype not in SUPPORTED:
                if linktype not in warned:
                    warned.add(linktype)
                    log.warning(
                        "%s: skipping frames of link type %d, which linkcast cannot read",
                        path,
                        linktype,
                    )
                stats.skip(f"unsupported link type {linktype}", bad=True)
                continue
            packet = _decode(ts, interface, interface_name, buf, linktype, stats)
            if packet is None:
                continue
            if not 0 <= packet.ts < MAX_TS_S:
                stats.skip("timestamp outside 1970..2100", bad=True)
                stats.bad_ip_packets += 1
                stats.bad_ip_bytes += packet.ip_len
                continue
            stats.ip_packets += 1
            stats.ip_bytes += packet.ip_len
            yield packet


def kind_is_gzip(stream: IO[bytes]) -> bool:
    return isinstance(stream, gzip.GzipFile)


PPP_IPV4, PPP_IPV6 = 0x0021, 0x0057


def _ppp_payload(buf: bytes) -> object:
    """The IP packet in a PPP frame (RFC 1661), with or without HDLC address and control."""
    if buf[:2] == b"\xff\x03":
        buf = buf[2:]
    protocol = int.from_bytes(buf[:2], "big")
    if protocol == PPP_IPV4:
        return dpkt.ip.IP(buf[2:])
    if protocol == PPP_IPV6:
        return dpkt.ip6.IP6(buf[2:])
    return buf


def _decode(
    ts: float,
    interface: int,
    interface_name: str | None,
    buf: bytes,
    linktype: int,
    stats: CaptureStats,
) -> Packet | None:
    vlan = None
    try:
        if linktype == LINKTYPE_ETHERNET:
            eth = dpkt.ethernet.Ethernet(buf)
            tags = getattr(eth, "vlan_tags", None)
            if tags:
                vlan = tags[0].id
            ip = eth.data
            if isinstance(ip, dpkt.pppoe.PPPoE):  # PPPoE session: Ethernet / PPPoE / PPP / IP
                ip = ip.data.data if isinstance(ip.data, dpkt.ppp.PPP) else ip.data
        elif linktype == LINKTYPE_PPP:
            ip = _ppp_payload(buf)
        elif linktype == LINKTYPE_LINUX_SLL:
            ip = dpkt.sll.SLL(buf).data
        elif linktype == LINKTYPE_LINUX_SLL2:
            ip = dpkt.sll2.SLL2(buf).data
        elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
            ip = dpkt.loopback.Loopback(buf).data
        elif linktype == LINKTYPE_IPV6 or (
            linktype == LINKTYPE_RAW and buf[:1] and buf[0] >> 4 == 6
        ):
            ip = dpkt.ip6.IP6(buf)
        else:  # raw IP or raw IPv4
            ip = dpkt.ip.IP(buf)
    except (dpkt.UnpackError, dpkt.NeedData, IndexError, ValueError) as exc:
        stats.skip(f"undecodable frame ({type(exc).__name__})", bad=True)
        return None
    if isinstance(ip, dpkt.ip.IP):
        # A total length of 0 is TCP segmentation offload: the capture saw the packet before
        # the NIC split it. Count what was captured, as Wireshark does.
        ip_len = ip.len or len(ip)
        proto = ip.p
        src = socket.inet_ntop(socket.AF_INET, ip.src)
        dst = socket.inet_ntop(socket.AF_INET, ip.dst)
    elif isinstance(ip, dpkt.ip6.IP6):
        ip_len = 40 + ip.plen
        proto = ip.nxt
        src = socket.inet_ntop(socket.AF_INET6, ip.src)
        dst = socket.inet_ntop(socket.AF_INET6, ip.dst)
    else:
        stats.skip(f"non-IP frame ({type(ip).__name__})", bad=False)
        return None
    if ip_len < 20:
        stats.skip("IP length field below the minimum header", bad=True)
        return None
    sport = dport = flags = 0
    l4 = ip.data
    if isinstance(l4, dpkt.tcp.TCP):
        sport, dport, flags = l4.sport, l4.dport, l4.flags & 0xFF  # the 8 classic flags
        proto = TCP
    elif isinstance(l4, dpkt.udp.UDP):
        sport, dport = l4.sport, l4.dport
        proto = UDP
    elif isinstance(ip, dpkt.ip6.IP6) and proto in (0, 43, 44, 60):
        # IPv6 extension headers: dpkt has walked them; the transport is in ip.p
        proto = getattr(ip, "p", proto)
    return Packet(ts, interface, src, dst, proto, sport, dport, ip_len, flags, vlan, interface_name)

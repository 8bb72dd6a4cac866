"""Capture file readers: classic pcap, and pcapng with each interface's own settings.

Classic pcap: a global header (magic in either byte order, microsecond or
nanosecond resolution, one link type) and then records of a 16-byte header
and the frame.

pcapng keeps each interface's link type, time resolution and offset:

pcapng (draft-ietf-opsawg-pcapng) is a sequence of blocks: a Section Header
Block, Interface Description Blocks, then packet blocks that name their
interface. Each interface has its own link type and timestamp resolution
(``if_tsresol``: microseconds unless it says otherwise; nanoseconds are
common), so a file may mix them. dpkt's reader applies the first interface's
to every packet; this one does not.

Both yield a ``Frame``: (interface index, interface name, link type, epoch
seconds, frame bytes), and raise TruncatedCaptureError when the file ends
inside a record or block. The index counts the Interface Description Blocks of
the current pcapng section from 0 (a new section starts again at 0); the name
is the interface's ``if_name`` option ("eth0", "\\Device\\NPF_{...}") where the
file gives one, else None. A classic pcap has one interface: index 0, no name.
"""

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

SHB, IDB, PB_OBSOLETE, SPB, EPB = 0x0A0D0D0A, 1, 2, 3, 6
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_END, IF_NAME, IF_TSRESOL, IF_TSOFFSET = 0, 2, 9, 14

# interface index, interface name (pcapng if_name) or None, link type, epoch seconds, frame bytes
Frame = tuple[int, str | None, int, float, bytes]


class TruncatedCaptureError(Exception):
    """The capture ends inside a block or a block is malformed."""


@dataclass(frozen=True)
class _Interface:
    linktype: int
    ticks_per_s: int
    offset_s: int
    name: str | None


def read_pcapng(stream: IO[bytes]) -> Iterator[Frame]:
    endian = "<"
    interfaces: list[_Interface] = []
    while True:
        head = stream.read(8)
        if not head:
            return
        if len(head) < 8:
            raise TruncatedCaptureError("the file ends inside a block header")
        block_type = struct.unpack(endian + "I", head[:4])[0]
        if block_type == SHB:
            magic = stream.read(4)
            if len(magic) < 4:
                raise TruncatedCaptureError("the file ends inside a section header")
            endian = "<" if struct.unpack("<I", magic)[0] == BYTE_ORDER_MAGIC else ">"
            length = struct.unpack(endian + "I", head[4:])[0]
            _read(stream, length - 12)  # version and options: nothing we need
            interfaces = []  # a new section starts its own interface list
            continue
        length = struct.unpack(endian + "I", head[4:])[0]
        if length < 12 or length % 4:
            raise TruncatedCaptureError(
                f"a block claims {length} bytes, which is not a valid length"
            )
        body = _read(stream, length - 8)[:-4]  # the trailing copy of the length goes
        if block_type == IDB:
            interfaces.append(_interface(body, endian))
        elif block_type == EPB:
            iface, high, low, caplen = struct.unpack(endian + "IIII", body[:16])
            yield _packet(interfaces, iface, (high << 32) | low, body[20 : 20 + caplen])
        elif block_type == PB_OBSOLETE:
            iface, _drops, high, low, caplen = struct.unpack(endian + "HHIII", body[:16])
            yield _packet(interfaces, iface, (high << 32) | low, body[20 : 20 + caplen])
        elif block_type == SPB:
            if not interfaces:
                raise TruncatedCaptureError("a simple packet block comes before any interface")
            (original,) = struct.unpack(endian + "I", body[:4])
            snap = len(body) - 4
            # no timestamp of its own: it carries none, so it gets 0 (and is then skipped as bad)
            first = interfaces[0]
            yield 0, first.name, first.linktype, 0.0, body[4 : 4 + min(original, snap)]
        # other blocks (name resolution, statistics, custom) carry no packets


def _read(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) < size:
        raise TruncatedCaptureError("the file ends inside a block")
    return data


def _interface(body: bytes, endian: str) -> _Interface:
    linktype = struct.unpack(endian + "H", body[:2])[0]
    ticks, offset, name = 1_000_000, 0, None
    pos = 8
    while pos + 4 <= len(body):
        code, size = struct.unpack(endian + "HH", body[pos : pos + 4])
        value = body[pos + 4 : pos + 4 + size]
        if code == OPT_END:
            break
        if code == IF_NAME and size >= 1:
            name = value.rstrip(b"\0").decode("utf-8", errors="replace") or None
        elif code == IF_TSRESOL and size >= 1:
            exponent = value[0] & 0x7F
            ticks = 2**exponent if value[0] & 0x80 else 10**exponent
        elif code == IF_TSOFFSET and size >= 8:
            offset = struct.unpack(endian + "q", value[:8])[0]
        pos += 4 + size + (-size % 4)
    return _Interface(linktype, ticks, offset, name)


def _packet(interfaces: list[_Interface], iface: int, ticks: int, frame: bytes) -> Frame:
    if iface >= len(interfaces):
        raise TruncatedCaptureError(f"a packet names interface {iface}, which was never described")
    interface = interfaces[iface]
    seconds, rest = divmod(ticks, interface.ticks_per_s)
    return (
        iface,
        interface.name,
        interface.linktype,
        interface.offset_s + seconds + rest / interface.ticks_per_s,
        frame,
    )


PCAP_MICRO, PCAP_NANO = 0xA1B2C3D4, 0xA1B23C4D


def read_pcap(stream: IO[bytes]) -> Iterator[Frame]:
    header = stream.read(24)
    if len(header) < 24:
        raise TruncatedCaptureError("the file ends inside the pcap header")
    for endian in ("<", ">"):
        magic = struct.unpack(endian + "I", header[:4])[0]
        if magic in (PCAP_MICRO, PCAP_NANO):
            break
    else:
        raise TruncatedCaptureError(f"not a pcap header: {header[:4].hex()}")
    ticks = 1_000_000 if magic == PCAP_MICRO else 1_000_000_000
    linktype = struct.unpack(endian + "I", header[20:24])[0] & 0x0FFFFFFF  # upper bits: FCS info
    record = struct.Struct(endian + "IIII")
    while True:
        head = stream.read(16)
        if not head:
            return
        if len(head) < 16:
            raise TruncatedCaptureError("the file ends inside a packet header")
        seconds, fraction, caplen, _original = record.unpack(head)
        if caplen > 262_144 * 4:
            raise TruncatedCaptureError(
                f"a packet claims {caplen} captured bytes: the file is corrupt"
            )
        frame = stream.read(caplen)
        if len(frame) < caplen:
            raise TruncatedCaptureError(
                f"the file ends inside a packet ({len(frame)} of {caplen} bytes)"
            )
        yield 0, None, linktype, seconds + fraction / ticks, frame

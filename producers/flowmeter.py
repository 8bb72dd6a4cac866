"""A bidirectional 5-tuple flow meter with idle and active timeouts, like a NetFlow/IPFIX exporter.

Packets of one link with the same protocol and the same two endpoints (in
either direction) make one flow; the first packet's sender is the forward
direction. A flow is exported as a FlowRecord when:

* it has been idle (no packet) for ``idle_timeout_s`` of capture time, or
* it has been active for ``active_timeout_s``: the slice so far is exported
  and the flow continues in a new slice, or
* the capture ends.

Every packet lands in exactly one record, so the records' bytes and packets
add up to the capture's IP bytes and packets exactly. A record's ``ts`` is the
time of its last packet and ``start`` that of its first.

Records come out in ``ts`` order: an exported record waits in a small buffer
until the capture clock has passed its ``ts`` by more than the longest delay an
export can have (the idle timeout plus the scan interval). A capture whose
own clock jumps backwards still yields records out of order; the stream counts
those as late, which is what they are.
"""

import heapq
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from producers.capture import TCP, Packet
from streams.schemas import FlowRecord

FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20


@dataclass(frozen=True)
class MeterConfig:
    """Flow expiry, in capture-time seconds."""

    idle_timeout_s: float = 15.0
    active_timeout_s: float = 30.0
    scan_interval_s: float = 1.0

    def __post_init__(self) -> None:
        for name in ("idle_timeout_s", "active_timeout_s", "scan_interval_s"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number of seconds, got {value}")


class _Flow:
    """Counters of one flow slice; plain attributes because this is the per-packet hot path."""

    __slots__ = (
        "ack",
        "bwd_bytes",
        "bwd_packets",
        "dport",
        "dst",
        "fin",
        "first_ts",
        "flags",
        "fwd_bytes",
        "fwd_packets",
        "fwd_sport",
        "fwd_src",
        "iat_m2",
        "iat_max",
        "iat_mean",
        "iat_min",
        "iat_n",
        "last_ts",
        "len_m2",
        "len_max",
        "len_mean",
        "len_min",
        "link",
        "packets",
        "proto",
        "psh",
        "rst",
        "syn",
        "urg",
    )  # fmt: skip

    def __init__(self, link: str, p: Packet) -> None:
        self.link = link
        self.proto = p.proto
        self.fwd_src, self.fwd_sport, self.dst, self.dport = p.src, p.sport, p.dst, p.dport
        self.first_ts = self.last_ts = p.ts
        self.packets = self.fwd_packets = self.bwd_packets = 0
        self.fwd_bytes = self.bwd_bytes = 0
        self.flags = self.syn = self.fin = self.rst = self.psh = self.ack = self.urg = 0
        self.len_min = self.len_max = p.ip_len
        self.len_mean = self.len_m2 = 0.0
        self.iat_n = 0
        self.iat_min = self.iat_max = self.iat_mean = self.iat_m2 = 0.0

    def add(self, p: Packet) -> None:
        if self.packets:
            iat = max(0.0, p.ts - self.last_ts)
            self.iat_n += 1
            delta = iat - self.iat_mean
            self.iat_mean += delta / self.iat_n
            self.iat_m2 += delta * (iat - self.iat_mean)
            if self.iat_n == 1 or iat < self.iat_min:
                self.iat_min = iat
            if iat > self.iat_max:
                self.iat_max = iat
        self.packets += 1
        size = p.ip_len
        delta = size - self.len_mean
        self.len_mean += delta / self.packets
        self.len_m2 += delta * (size - self.len_mean)
        self.len_min = min(self.len_min, size)
        self.len_max = max(self.len_max, size)
        if p.src == self.fwd_src and p.sport == self.fwd_sport:
            self.fwd_packets += 1
            self.fwd_bytes += size
        else:
            self.bwd_packets += 1
            self.bwd_bytes += size
        if p.ts > self.last_ts:
            self.last_ts = p.ts
        if self.proto == TCP:
            f = p.tcp_flags
            self.flags |= f
            self.fin += f & FIN
            self.syn += (f & SYN) >> 1
            self.rst += (f & RST) >> 2
            self.psh += (f & PSH) >> 3
            self.ack += (f & ACK) >> 4
            self.urg += (f & URG) >> 5

    def record(self) -> FlowRecord:
        tcp = self.proto == TCP
        many = self.packets > 1
        return FlowRecord(
            link=self.link,
            ts=round(self.last_ts, 6),
            start=round(self.first_ts, 6),
            bytes=self.fwd_bytes + self.bwd_bytes,
            packets=self.packets,
            src=self.fwd_src,
            dst=self.dst,
            sport=self.fwd_sport,
            dport=self.dport,
            proto=self.proto,
            tcp_flags=self.flags if tcp else None,
            syn_count=self.syn if tcp else None,
            fin_count=self.fin if tcp else None,
            rst_count=self.rst if tcp else None,
            psh_count=self.psh if tcp else None,
            ack_count=self.ack if tcp else None,
            urg_count=self.urg if tcp else None,
            fwd_bytes=self.fwd_bytes,
            bwd_bytes=self.bwd_bytes,
            fwd_packets=self.fwd_packets,
            bwd_packets=self.bwd_packets,
            pkt_len_min=self.len_min,
            pkt_len_mean=round(self.len_mean, 3),
            pkt_len_max=self.len_max,
            pkt_len_std=round(math.sqrt(self.len_m2 / self.packets), 3),
            iat_min_s=round(self.iat_min, 6) if many else None,
            iat_mean_s=round(self.iat_mean, 6) if many else None,
            iat_max_s=round(self.iat_max, 6) if many else None,
            iat_std_s=round(math.sqrt(self.iat_m2 / self.iat_n), 6) if many else None,
        )


FlowKey = tuple[str, int, str, int, str, int]


def flow_key(link: str, p: Packet) -> FlowKey:
    """The same key for both directions of a conversation on one link."""
    a, b = (p.src, p.sport), (p.dst, p.dport)
    if b < a:
        a, b = b, a
    return (link, p.proto, a[0], a[1], b[0], b[1])


class FlowMeter:
    """Turns packets (in capture order) into flow records (in ``ts`` order)."""

    def __init__(self, config: MeterConfig, link_of: Callable[[Packet], str]) -> None:
        self.config = config
        self.link_of = link_of
        self.flows: dict[FlowKey, _Flow] = {}
        self.clock = -math.inf  # the largest capture time seen
        self._next_scan = -math.inf
        self._ready: list[tuple[float, int, FlowRecord]] = []
        self._seq = 0
        self.records_out = 0

    def add(self, p: Packet) -> Iterator[FlowRecord]:
        """Meter one packet; yield the records that are now certain to be next in ``ts`` order."""
        cfg = self.config
        if p.ts > self.clock:
            self.clock = p.ts
        link = self.link_of(p)
        key = flow_key(link, p)
        flow = self.flows.get(key)
        if flow is not None and (
            p.ts - flow.last_ts >= cfg.idle_timeout_s
            or p.ts - flow.first_ts >= cfg.active_timeout_s
        ):
            self._export(flow)
            flow = None
        if flow is None:
            flow = self.flows[key] = _Flow(link, p)
        flow.add(p)
        if self.clock >= self._next_scan:
            self._scan()
            self._next_scan = self.clock + cfg.scan_interval_s
        return self._release(self.clock - cfg.idle_timeout_s - cfg.scan_interval_s)

    def flush(self) -> Iterator[FlowRecord]:
        """Export every open flow (the capture has ended) and yield all that is left."""
        for flow in self.flows.values():
            self._export(flow)
        self.flows.clear()
        return self._release(math.inf)

    def _scan(self) -> None:
        idle_before = self.clock - self.config.idle_timeout_s
        expired = [k for k, f in self.flows.items() if f.last_ts <= idle_before]
        for key in expired:
            self._export(self.flows.pop(key))

    def _export(self, flow: _Flow) -> None:
        record = flow.record()
        self._seq += 1
        heapq.heappush(self._ready, (record.ts, self._seq, record))

    def _release(self, up_to_ts: float) -> Iterator[FlowRecord]:
        ready = self._ready
        while ready and ready[0][0] <= up_to_ts:
            self.records_out += 1
            yield heapq.heappop(ready)[2]

"""A deterministic traffic model: labelled packets and flow records for N links.

The model works at the packet level, the way a link sees traffic:

* **web**: a TCP handshake, a request, a response of log-normal size paced at
  the server's throughput with the client's ACKs, and a FIN exchange;
* **streaming**: a long TCP session fetching a chunk every 2-4 s (periodic
  bursts at line rate, the video's bitrate on average);
* **bulk**: elephant transfers of tens of megabytes in one direction;
* **interactive**: SSH keystrokes and echoes, or a VoIP call (RTP over UDP,
  a 200-byte packet every 20 ms each way);
* **dns**: a UDP query and its answer (a few go unanswered);
* **attack**: episodes, not background noise. A link is attacked now and
  then (``attack_every_s``) for 10-60 s by one of: a SYN flood (one SYN from
  each of many spoofed sources), a UDP flood (a few sources sending big
  datagrams at a high rate), a port scan (one SYN per port, answered with RST)
  or an SSH brute force (many short sessions).

Each link has a size (log-normal, so a few links carry most traffic) and its
own class mix around a common one. New flows arrive as a Poisson process
whose rate follows a daily cycle (low at 04:00 UTC, high in the evening) and,
with ``bursts``, a per-link two-state process: now and then a link's rate
triples for half a minute or so (a flash crowd).

A flow record is computed here from the flow's own packets, the way a
NetFlow/IPFIX exporter with a 30 s active timeout would (the idle timeout
never fires: no flow pauses for 15 s), and the run ends like a capture does,
cutting the flows still open. So ``simulate`` and ``simulate_packets`` are two
views of the same traffic, and a capture written from the packets
(``linkcast simulate --pcap``) must meter back into the same records.

The same ``SimulationConfig`` always yields the same records, in event-time
order, so tests can recompute what a run published.
"""

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from producers.flowmeter import ACK, FIN, PSH, RST, SYN, URG, MeterConfig
from streams.schemas import MAX_TS_S, FlowRecord, TrafficClass

DEFAULT_START_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY_S = 86_400.0
US = 1_000_000
TCP, UDP = 6, 17
ATTACK_KINDS = ("syn_flood", "udp_flood", "port_scan", "brute_force")

# What share of new flows each background class has on a typical link: web and DNS
# dominate the counts, bulk and streaming the bytes.
BACKGROUND = (
    TrafficClass.WEB,
    TrafficClass.STREAMING,
    TrafficClass.BULK,
    TrafficClass.INTERACTIVE,
    TrafficClass.DNS,
)
BASE_MIX = np.array([0.50, 0.03, 0.01, 0.06, 0.40])

BURST_FACTOR = 3.0
MEAN_CALM_S = 300.0
MEAN_BURST_S = 30.0
SLICE_US = US  # flows are drawn one second at a time

HEADERS = 52  # IPv4 + TCP with the timestamp option
MSS = 1448
SYN_BYTES = 60
RTP_BYTES = 200  # IPv4 + UDP + RTP + 20 ms of G.711


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate; every field is part of what makes a run reproducible."""

    links: int = 3
    duration_s: float = 60.0
    rate: float = 200.0  # mean new flows per second over all links, before bursts and attacks
    seed: int = 0
    start_s: float = DEFAULT_START_S
    attack_every_s: float = 600.0  # mean time between attack episodes on one link; 0: none
    attack_kinds: tuple[str, ...] = ATTACK_KINDS
    bursts: bool = True

    def __post_init__(self) -> None:
        if self.links < 1:
            raise ValueError(f"links must be at least 1, got {self.links}")
        if not self.duration_s > 0:
            raise ValueError(f"duration must be positive, got {self.duration_s} s")
        if not self.rate > 0:
            raise ValueError(f"rate must be positive, got {self.rate} flows/s")
        if not 0 <= self.start_s < MAX_TS_S - self.duration_s:
            raise ValueError(f"start must be an epoch time before 2100, got {self.start_s}")
        if not self.attack_every_s >= 0:
            raise ValueError(f"attack_every_s must be 0 (none) or more, got {self.attack_every_s}")
        unknown = set(self.attack_kinds) - set(ATTACK_KINDS)
        if unknown or not self.attack_kinds:
            raise ValueError(
                f"attack kinds must be some of {', '.join(ATTACK_KINDS)}; got {self.attack_kinds}"
            )


def link_names(links: int) -> list[str]:
    """The simulated links' ids: link-000, link-001, ..."""
    width = max(3, len(str(links - 1)))
    return [f"link-{i:0{width}d}" for i in range(links)]


@dataclass(frozen=True, slots=True)
class SimPacket:
    """One simulated IPv4 packet on link number ``link``."""

    t_us: int
    link: int
    src: str
    dst: str
    proto: int
    sport: int
    dport: int
    ip_len: int
    tcp_flags: int


def simulate(config: SimulationConfig) -> Iterator[FlowRecord]:
    """Yield the run's flow records in event-time (``ts``) order."""
    names = link_names(config.links)
    active_us = round(MeterConfig().active_timeout_s * US)
    pending: list[tuple[int, int, FlowRecord]] = []
    seq = 0
    for slice_end_us, flows in _Model(config).slices():
        for flow in flows:
            for record in _records(flow, names[flow.link], active_us):
                seq += 1
                heapq.heappush(pending, (round(record.ts * US), seq, record))
        # Every later flow starts at slice_end_us or after, and so do its records.
        while pending and pending[0][0] < slice_end_us:
            yield heapq.heappop(pending)[2]
    while pending:
        yield heapq.heappop(pending)[2]


def simulate_packets(config: SimulationConfig) -> Iterator[SimPacket]:
    """Yield the run's packets in time order (the traffic ``simulate`` reports as flows)."""
    heads: list[tuple[int, int, int, _Flow]] = []  # (time of next packet, seq, index, flow)
    seq = 0
    for slice_end_us, flows in _Model(config).slices():
        for flow in flows:
            if len(flow.t_us):
                seq += 1
                heapq.heappush(heads, (int(flow.t_us[0]), seq, 0, flow))
        while heads and heads[0][0] < slice_end_us:
            yield _next_packet(heads)
    while heads:
        yield _next_packet(heads)


def _next_packet(heads: list[tuple[int, int, int, "_Flow"]]) -> SimPacket:
    t_us, seq, i, flow = heads[0]
    if i + 1 < len(flow.t_us):
        heapq.heapreplace(heads, (int(flow.t_us[i + 1]), seq, i + 1, flow))
    else:
        heapq.heappop(heads)
    forward = bool(flow.fwd[i])
    src, sport, dst, dport = flow.ends if forward else flow.ends_reversed
    return SimPacket(
        t_us, flow.link, src, dst, flow.proto, sport, dport, int(flow.size[i]), int(flow.flags[i])
    )


# ---- flows -----------------------------------------------------------------


@dataclass
class _Flow:
    """One conversation's packets, in time order; ``fwd`` marks those its initiator sent."""

    link: int
    label: TrafficClass
    proto: int
    src: str
    sport: int
    dst: str
    dport: int
    t_us: np.ndarray
    size: np.ndarray
    fwd: np.ndarray
    flags: np.ndarray

    @property
    def ends(self) -> tuple[str, int, str, int]:
        return self.src, self.sport, self.dst, self.dport

    @property
    def ends_reversed(self) -> tuple[str, int, str, int]:
        return self.dst, self.dport, self.src, self.sport


class _Packets:
    """Builds a flow's packets, one at a time or as arrays; sorted by time (stably) when done."""

    def __init__(self) -> None:
        self.single: list[tuple[int, int, bool, int]] = []
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def one(self, t_us: int, size: int, fwd: bool, flags: int = 0) -> None:
        self.single.append((int(t_us), size, fwd, flags))

    def many(self, t_us: np.ndarray, size: np.ndarray | int, fwd: bool, flags: int = 0) -> None:
        n = len(t_us)
        self.parts.append(
            (
                np.asarray(t_us, dtype=np.int64),
                np.broadcast_to(np.asarray(size, dtype=np.int64), (n,)),
                np.full(n, fwd),
                np.full(n, flags, dtype=np.int64),
            )
        )

    def flow(
        self,
        end_us: int,
        link: int,
        label: TrafficClass,
        proto: int,
        ends: tuple[str, int, str, int],
    ) -> "_Flow":
        """The flow of these packets, without those at or after ``end_us``.

        The end of the run cuts open flows the way the end of a capture does.
        """
        parts = list(self.parts)
        if self.single:
            t1, size1, fwd1, flags1 = zip(*self.single, strict=True)
            parts.insert(
                0,
                (
                    np.array(t1, dtype=np.int64),
                    np.array(size1, dtype=np.int64),
                    np.array(fwd1),
                    np.array(flags1, dtype=np.int64),
                ),
            )
        t, size, fwd, flags = (np.concatenate(a) for a in zip(*parts, strict=True))
        order = np.argsort(t, kind="stable")
        keep = order[t[order] < end_us]
        return _Flow(link, label, proto, *ends, t[keep], size[keep], fwd[keep], flags[keep])


@dataclass
class _Episode:
    """An attack on one link: who, what, when, how hard."""

    kind: str
    start_us: int
    end_us: int
    attacker: str
    victim: str
    port: int
    rate: float  # new flows (or probes, or sessions) per second
    sources: list[str] = field(default_factory=list)  # UDP flood only
    probes: int = 0  # port scan only: ports probed so far


class _Model:
    """The state of a run: link sizes, mixes, burst states, attack schedules, port counters."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        weights = self.rng.lognormal(0.0, 1.0, config.links)
        self.link_rate = config.rate * weights / weights.sum()  # new flows/s per link
        self.mix = self.rng.dirichlet(BASE_MIX * 40, config.links)
        self.subnets = [f"10.{i // 256 % 256}.{i % 256}." for i in range(config.links)]
        self.bursting = np.zeros(config.links, dtype=bool)
        self.start_us = round(config.start_s * US)
        self.end_us = self.start_us + round(config.duration_s * US)
        self.next_attack_us = np.array(
            [self._next_attack(self.start_us) for _ in range(config.links)], dtype=np.float64
        )
        self.episodes: list[tuple[int, _Episode]] = []
        self.ports: dict[str, int] = {}

    def slices(self) -> Iterator[tuple[int, list[_Flow]]]:
        """Per second of the run: its end, and the flows that start in it, by start time."""
        for lo in range(self.start_us, self.end_us, SLICE_US):
            hi = min(lo + SLICE_US, self.end_us)
            starts: list[tuple[int, int, TrafficClass | str, _Episode | None]] = []
            self._background(lo, hi, starts)
            self._attacks(lo, hi, starts)
            starts.sort(key=lambda s: (s[0], s[1]))
            yield hi, [self._flow(*s) for s in starts]

    # -- when flows start --

    def _background(self, lo: int, hi: int, out: list) -> None:
        config = self.config
        seconds = (hi - lo) / US
        if config.bursts:
            p_up = 1 - math.exp(-seconds / MEAN_CALM_S)
            p_down = 1 - math.exp(-seconds / MEAN_BURST_S)
            flip = self.rng.random(config.links) < np.where(self.bursting, p_down, p_up)
            self.bursting ^= flip
        factor = _daily_factor(lo / US) * np.where(self.bursting, BURST_FACTOR, 1.0)
        counts = self.rng.poisson(self.link_rate[:, None] * self.mix * factor[:, None] * seconds)
        for link, c in zip(*np.nonzero(counts), strict=True):
            for t in self.rng.integers(lo, hi, counts[link, c]):
                out.append((int(t), int(link), BACKGROUND[c], None))

    def _attacks(self, lo: int, hi: int, out: list) -> None:
        if self.config.attack_every_s > 0:
            for attacked in np.nonzero(self.next_attack_us < hi)[0]:
                start = max(lo, int(self.next_attack_us[attacked]))
                episode = self._episode(int(attacked), start)
                self.episodes.append((int(attacked), episode))
                self.next_attack_us[attacked] = self._next_attack(episode.end_us)
        still = []
        for link, e in self.episodes:
            a, b = max(lo, e.start_us), min(hi, e.end_us)
            if e.kind == "udp_flood":
                if lo <= e.start_us < hi:  # one long flow per source, from the start
                    out.extend((e.start_us, link, "udp_flood", e) for _ in e.sources)
            elif e.kind == "port_scan":  # probes at a steady rate
                gap = US / e.rate
                first = e.start_us + math.ceil((a - e.start_us) / gap) * gap
                out.extend((int(t), link, "port_scan", e) for t in np.arange(first, b, gap))
            elif a < b:
                for t in self.rng.integers(a, b, self.rng.poisson(e.rate * (b - a) / US)):
                    out.append((int(t), link, e.kind, e))
            if e.end_us > hi:
                still.append((link, e))
        self.episodes = still

    def _next_attack(self, after_us: int) -> float:
        if self.config.attack_every_s <= 0:
            return math.inf
        return after_us + self.rng.exponential(self.config.attack_every_s) * US

    def _episode(self, link: int, start_us: int) -> _Episode:
        """A new attack on ``link``: its kind, target port (or scan source port) and rate."""
        rng = self.rng
        kind = str(rng.choice(self.config.attack_kinds))
        base = max(1.0, float(self.link_rate[link]))
        victim = self._host(link)
        attacker = _external(rng)
        end_us = start_us + int(rng.uniform(10, 60) * US)
        sources: list[str] = []
        if kind == "syn_flood":  # new flows per second: several times the link's own
            port, rate = int(rng.choice([80, 443])), base * rng.uniform(5, 15)
        elif kind == "udp_flood":  # datagrams per second from each of a few sources
            sources = [_external(rng) for _ in range(int(rng.integers(3, 9)))]
            port, rate = int(rng.integers(1024, 65536)), float(rng.uniform(100, 300))
        elif kind == "port_scan":  # the scanner's source port; ports probed per second
            port, rate = int(rng.integers(32768, 61000)), float(rng.uniform(20, 100))
        else:  # brute force: login sessions per second
            port, rate = int(rng.choice([22, 3389])), float(rng.uniform(2, 8))
        return _Episode(kind, start_us, end_us, attacker, victim, port, rate, sources)

    # -- what flows look like --

    def _host(self, link: int) -> str:
        return f"{self.subnets[link]}{int(self.rng.integers(2, 254))}"

    def _client_port(self, host: str) -> int:
        """Ephemeral ports handed out in turn per host, so no 5-tuple is reused early."""
        port = self.ports.get(host)
        if port is None:
            port = int(self.rng.integers(32768, 61000))
        port = 32768 + (port - 32768 + 1) % 28232
        self.ports[host] = port
        return port

    def _flow(
        self, t0: int, link: int, kind: "TrafficClass | str", episode: _Episode | None
    ) -> _Flow:
        rng = self.rng
        rtt = int(np.clip(rng.lognormal(math.log(30_000), 0.5), 2_000, 300_000))
        p = _Packets()
        if episode is not None:
            return self._attack_flow(t0, link, episode, rtt, p)
        cls = TrafficClass(kind)
        client = self._host(link)
        if cls is TrafficClass.INTERACTIVE and rng.random() < 0.4:  # a VoIP call
            _voip(rng, p, t0, rtt)
            rtp = int(rng.integers(8192, 16384)) * 2, int(rng.integers(8192, 16384)) * 2
            return p.flow(self.end_us, link, cls, UDP, (client, rtp[0], _external(rng), rtp[1]))
        sport = self._client_port(client)
        if cls is TrafficClass.DNS:
            p.one(t0, int(rng.integers(60, 91)), True)
            if rng.random() > 0.03:
                p.one(t0 + rtt, int(rng.integers(90, 401)), False)
            server, dport, proto = f"{self.subnets[link]}1", 53, UDP
        else:
            server, proto = _external(rng), TCP
            dport = int(rng.choice(_TCP_PORTS[cls]))
            t = _handshake(p, t0, rtt)
            if cls is TrafficClass.WEB:
                t = _web(rng, p, t, rtt)
            elif cls is TrafficClass.STREAMING:
                t = _streaming(rng, p, t, rtt)
            elif cls is TrafficClass.BULK:
                t = _transfer(
                    rng,
                    p,
                    t,
                    rtt,
                    _lognormal_bytes(rng, 40e6, 1.0, 500e6),
                    rng.random() < 0.3,
                    rng.lognormal(math.log(80e6), 0.5),
                )
            else:
                t = _keystrokes(rng, p, t, rtt)
            _close(p, t, rtt)
        return p.flow(self.end_us, link, cls, proto, (client, sport, server, dport))

    def _attack_flow(self, t0: int, link: int, e: _Episode, rtt: int, p: _Packets) -> _Flow:
        rng = self.rng
        label = TrafficClass.ATTACK
        if e.kind == "syn_flood":  # spoofed sources: one SYN each, never answered
            p.one(t0, SYN_BYTES, True, SYN)
            src, sport, proto = _external(rng), int(rng.integers(1024, 65536)), TCP
        elif e.kind == "udp_flood":
            src = e.sources.pop()
            gap = US / e.rate
            times = np.arange(t0, e.end_us, gap) + rng.integers(0, int(gap), 1)
            p.many(times, rng.integers(1000, 1401, len(times)), True)
            sport, proto = int(rng.integers(1024, 65536)), UDP
        elif e.kind == "port_scan":  # one source port, one SYN per destination port
            p.one(t0, SYN_BYTES, True, SYN)
            if rng.random() < 0.02:  # open: SYN-ACK, and the scanner resets
                p.one(t0 + rtt, SYN_BYTES, False, SYN | ACK)
                p.one(t0 + rtt + 100, 40, True, RST)
            elif rng.random() < 0.8:  # closed; the rest are filtered (no answer)
                p.one(t0 + rtt, 40, False, RST | ACK)
            e.probes += 1
            dport = 1 + (e.probes - 1) % 65535  # every port in turn
            return p.flow(self.end_us, link, label, TCP, (e.attacker, e.port, e.victim, dport))
        else:  # brute force: short sessions, a few login attempts each, then the server hangs up
            src, proto = e.attacker, TCP
            sport = self._client_port(e.attacker)
            t = _handshake(p, t0, rtt)
            p.one(t + rtt // 2, int(rng.integers(80, 121)), False, PSH | ACK)  # banner
            for _ in range(int(rng.integers(3, 7))):
                t += rtt + int(rng.integers(5_000, 50_000))
                p.one(t, int(rng.integers(100, 301)), True, PSH | ACK)
                p.one(t + rtt, int(rng.integers(60, 121)), False, PSH | ACK)
            _close(p, t + rtt + 1_000, rtt, server_first=True)
        return p.flow(self.end_us, link, label, proto, (src, sport, e.victim, e.port))


_TCP_PORTS = {
    TrafficClass.WEB: (443, 443, 443, 80),
    TrafficClass.STREAMING: (443,),
    TrafficClass.BULK: (22, 445, 873, 443),
    TrafficClass.INTERACTIVE: (22, 22, 3389),
}


def _external(rng: np.random.Generator) -> str:
    """A public IPv4 address in 11.0.0.0 .. 99.255.255.255 (the links live in 10/8)."""
    a, b, c, d = rng.integers((11, 0, 0, 1), (100, 256, 256, 255))
    return f"{a}.{b}.{c}.{d}"


def _lognormal_bytes(rng: np.random.Generator, median: float, sigma: float, cap: float) -> int:
    return int(min(cap, median * math.exp(sigma * rng.standard_normal())))


def _handshake(p: _Packets, t0: int, rtt: int) -> int:
    p.one(t0, SYN_BYTES, True, SYN)
    p.one(t0 + rtt, SYN_BYTES, False, SYN | ACK)
    p.one(t0 + rtt + 50, HEADERS, True, ACK)
    return t0 + rtt + 100


def _close(p: _Packets, t: int, rtt: int, server_first: bool = False) -> None:
    p.one(t, HEADERS, not server_first, FIN | ACK)
    p.one(t + rtt, HEADERS, server_first, FIN | ACK)
    p.one(t + rtt + 50, HEADERS, not server_first, ACK)


def _transfer(
    rng: np.random.Generator, p: _Packets, t: int, rtt: int, nbytes: int, fwd: bool, bps: float
) -> int:
    """``nbytes`` of payload in full segments at ``bps``, ACKed every second segment."""
    n = max(1, math.ceil(nbytes / MSS))
    gap = (HEADERS + MSS) * 8 / bps * US
    times = t + np.arange(n) * gap
    sizes = np.full(n, HEADERS + MSS)
    sizes[-1] = HEADERS + (nbytes - (n - 1) * MSS)
    p.many(times[:-1], sizes[:-1], fwd, ACK)
    p.one(times[-1], int(sizes[-1]), fwd, PSH | ACK)
    acked = times[1::2] + rtt // 2
    p.many(acked, HEADERS, not fwd, ACK)
    return int(times[-1] + rtt // 2 + int(rng.integers(100, 2_000)))


def _web(rng: np.random.Generator, p: _Packets, t: int, rtt: int) -> int:
    p.one(t, int(rng.integers(300, 901)), True, PSH | ACK)  # the request
    think = int(rng.exponential(20_000))
    body = _lognormal_bytes(rng, 30_000, 1.4, 5e6)
    return _transfer(rng, p, t + rtt + think, rtt, body, False, rng.lognormal(math.log(20e6), 0.7))


def _streaming(rng: np.random.Generator, p: _Packets, t: int, rtt: int) -> int:
    period = int(rng.uniform(2, 4) * US)
    bitrate = float(rng.choice([0.8e6, 1.5e6, 3e6]))
    chunks = int(rng.uniform(20, 120) * US) // period
    for _ in range(max(1, chunks)):
        p.one(t, int(rng.integers(400, 700)), True, PSH | ACK)
        chunk = int(bitrate * period / US / 8 * rng.uniform(0.8, 1.2))
        _transfer(rng, p, t + rtt, rtt, chunk, False, 50e6)
        t += period
    return t


def _keystrokes(rng: np.random.Generator, p: _Packets, t: int, rtt: int) -> int:
    end = t + int(rng.uniform(10, 120) * US)
    gaps = np.minimum(rng.exponential(1 / 3, 1 + int((end - t) / US * 3)), 8.0)  # never 15 s idle
    times = (t + np.cumsum(gaps) * US).astype(np.int64)
    times = times[times < end]
    if len(times) == 0:
        times = np.array([t])
    p.many(times, rng.integers(80, 161, len(times)), True, PSH | ACK)
    p.many(times + rtt, rng.integers(80, 161, len(times)), False, PSH | ACK)
    p.many(times + rtt + 200, HEADERS, True, ACK)
    return int(times[-1] + rtt + 1_000)


def _voip(rng: np.random.Generator, p: _Packets, t: int, rtt: int) -> None:
    duration = int(rng.uniform(20, 180) * US)
    times = t + np.arange(0, duration, 20_000)
    p.many(times, RTP_BYTES, True)
    p.many(times + rtt // 2 + 7_000, RTP_BYTES, False)


def _daily_factor(t: float) -> float:
    """Traffic relative to the daily mean: low at 04:00 UTC, high in the evening (0.7 .. 1.3)."""
    phase = (t % DAY_S) / DAY_S
    return 1.0 + 0.3 * math.sin(2 * math.pi * (phase - 0.42))


# ---- flow records ----------------------------------------------------------


def _records(flow: _Flow, link: str, active_us: int) -> Iterator[FlowRecord]:
    """The flow as an exporter reports it: a slice per ``active_us`` of activity."""
    t = flow.t_us
    start = 0
    while start < len(t):
        stop = int(np.searchsorted(t, t[start] + active_us, side="left"))
        yield _record(flow, link, slice(start, stop))
        start = stop


def _record(flow: _Flow, link: str, part: slice) -> FlowRecord:
    t, size, sent, flags = flow.t_us[part], flow.size[part], flow.fwd[part], flow.flags[part]
    first = bool(sent[0])  # the slice's first sender is its forward side
    src, sport, dst, dport = flow.ends if first else flow.ends_reversed
    forward = sent == first
    fwd_bytes, total = int(size[forward].sum()), int(size.sum())
    fwd_packets = int(np.count_nonzero(forward))
    tcp = flow.proto == TCP
    counts = _flag_counts(flags) if tcp else {}
    len_min, len_mean, len_max, len_std = _summary(size)
    iat = _summary(np.diff(t) / US) if len(t) > 1 else None
    return FlowRecord(
        link=link,
        ts=round(int(t[-1]) / US, 6),
        start=round(int(t[0]) / US, 6),
        bytes=total,
        packets=len(t),
        src=src,
        dst=dst,
        sport=sport,
        dport=dport,
        proto=flow.proto,
        tcp_flags=int(np.bitwise_or.reduce(flags)) if tcp else None,
        syn_count=counts.get(SYN),
        fin_count=counts.get(FIN),
        rst_count=counts.get(RST),
        psh_count=counts.get(PSH),
        ack_count=counts.get(ACK),
        urg_count=counts.get(URG),
        fwd_bytes=fwd_bytes,
        bwd_bytes=total - fwd_bytes,
        fwd_packets=fwd_packets,
        bwd_packets=len(t) - fwd_packets,
        pkt_len_min=len_min,
        pkt_len_mean=round(len_mean, 3),
        pkt_len_max=len_max,
        pkt_len_std=round(len_std, 3),
        iat_min_s=None if iat is None else round(iat[0], 6),
        iat_mean_s=None if iat is None else round(iat[1], 6),
        iat_max_s=None if iat is None else round(iat[2], 6),
        iat_std_s=None if iat is None else round(iat[3], 6),
        label=flow.label,
    )


def _flag_counts(flags: np.ndarray) -> dict[int, int]:
    """How many packets have each TCP flag set."""
    return {bit: int(np.count_nonzero(flags & bit)) for bit in (SYN, FIN, RST, PSH, ACK, URG)}


def _summary(values: np.ndarray) -> tuple[float, float, float, float]:
    """min, mean, max and population standard deviation (as flow exporters report it)."""
    if len(values) > 64:
        mean = float(values.mean())
        return float(values.min()), mean, float(values.max()), float(values.std())
    v = values.tolist()  # few values: plain Python is faster than numpy's per-call cost
    mean = sum(v) / len(v)
    std = math.sqrt(sum((x - mean) ** 2 for x in v) / len(v))
    return float(min(v)), mean, float(max(v)), std

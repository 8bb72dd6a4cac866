"""A deterministic traffic simulator: labelled flow records for N links.

Flows arrive as a Poisson process whose rate follows a daily cycle; each flow
goes to a link in proportion to the link's size (log-normal, so a few links
carry most traffic) and gets a traffic class from the link's own mix. Each
class has its own shape: many small web transfers, periodic streaming chunks,
rare long bulk transfers, small interactive sessions, two-packet DNS
exchanges and an occasional one-packet SYN of a scan.

The same ``SimulationConfig`` always yields the same records, in event-time
order, so tests can recompute what a run published.
"""

import ipaddress
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from streams.schemas import FlowRecord, TrafficClass

DEFAULT_START_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY_S = 86_400.0


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate; every field is part of what makes a run reproducible."""

    links: int = 3
    duration_s: float = 60.0
    rate: float = 200.0  # mean flow records per second over all links
    seed: int = 0
    start_s: float = DEFAULT_START_S

    def __post_init__(self) -> None:
        if self.links < 1:
            raise ValueError(f"links must be at least 1, got {self.links}")
        if not self.duration_s > 0:
            raise ValueError(f"duration must be positive, got {self.duration_s} s")
        if not self.rate > 0:
            raise ValueError(f"rate must be positive, got {self.rate} records/s")
        if not 0 <= self.start_s < 4_102_444_800:
            raise ValueError(f"start must be an epoch time before 2100, got {self.start_s}")


@dataclass(frozen=True)
class _ClassShape:
    """How the flows of one class look: log-normal bytes, packet size, duration."""

    median_bytes: float
    sigma: float
    mean_packet_bytes: float
    median_duration_s: float
    ports: tuple[int, ...]
    proto: int  # 6 TCP, 17 UDP


SHAPES: dict[TrafficClass, _ClassShape] = {
    TrafficClass.WEB: _ClassShape(30_000, 1.4, 900, 0.4, (443, 80), 6),
    TrafficClass.STREAMING: _ClassShape(1_500_000, 0.4, 1_350, 2.0, (443,), 6),
    TrafficClass.BULK: _ClassShape(40_000_000, 1.0, 1_450, 20.0, (22, 445, 873), 6),
    TrafficClass.INTERACTIVE: _ClassShape(6_000, 0.8, 180, 5.0, (22, 3389, 5060), 6),
    TrafficClass.DNS: _ClassShape(260, 0.3, 130, 0.02, (53,), 17),
    TrafficClass.ATTACK: _ClassShape(60, 0.0, 60, 0.0, (22, 23, 80, 443, 3389), 6),
}
CLASSES = list(SHAPES)
# The typical share of flow records of each class on a link (web and DNS dominate counts,
# bulk and streaming dominate bytes).
BASE_MIX = np.array([0.45, 0.08, 0.01, 0.08, 0.36, 0.02])


def link_names(links: int) -> list[str]:
    """The simulated links' ids: link-000, link-001, ..."""
    width = max(3, len(str(links - 1)))
    return [f"link-{i:0{width}d}" for i in range(links)]


def simulate(config: SimulationConfig) -> Iterator[FlowRecord]:
    """Yield the run's flow records in event-time order."""
    rng = np.random.default_rng(config.seed)
    names = link_names(config.links)
    weights = rng.lognormal(0.0, 1.0, config.links)
    weights /= weights.sum()
    mixes = rng.dirichlet(BASE_MIX * 40, config.links)  # each link's own mix around the base
    subnets = [
        ipaddress.IPv4Network(f"10.{i // 256 % 256}.{i % 256}.0/24") for i in range(config.links)
    ]
    end_s = config.start_s + config.duration_s
    t = config.start_s
    peak = config.rate * 1.3  # thinning: draw at the peak rate, keep by the daily factor
    while True:
        t += rng.exponential(1.0 / peak)
        if t >= end_s:
            return
        if rng.random() * 1.3 > _daily_factor(t):
            continue
        link = int(rng.choice(config.links, p=weights))
        cls = CLASSES[int(rng.choice(len(CLASSES), p=mixes[link]))]
        yield _flow(rng, names[link], subnets[link], cls, round(t, 6))


def _daily_factor(t: float) -> float:
    """Traffic relative to the daily mean: low at 04:00 UTC, high in the evening (0.7 .. 1.3)."""
    phase = (t % DAY_S) / DAY_S
    return 1.0 + 0.3 * math.sin(2 * math.pi * (phase - 0.42))


def _flow(
    rng: np.random.Generator, link: str, subnet: ipaddress.IPv4Network, cls: TrafficClass, ts: float
) -> FlowRecord:
    shape = SHAPES[cls]
    nbytes = max(40, int(shape.median_bytes * math.exp(shape.sigma * rng.standard_normal())))
    packets = max(1, round(nbytes / shape.mean_packet_bytes))
    if cls is TrafficClass.DNS:
        packets = 2
    duration = 0.0 if packets == 1 else float(rng.exponential(shape.median_duration_s))
    src = subnet[int(rng.integers(2, 254))]
    dst = ipaddress.IPv4Address(int(rng.integers(0x01000000, 0xDF000000)))
    fwd_packets = max(1, packets // 3) if packets > 1 else 1
    mean_len = nbytes / packets
    return FlowRecord(
        link=link,
        ts=ts,
        start=round(max(0.0, ts - duration), 6),
        bytes=nbytes,
        packets=packets,
        src=src,
        dst=dst,
        sport=int(rng.integers(32768, 61000)),
        dport=int(rng.choice(shape.ports)),
        proto=shape.proto,
        tcp_flags=0x02 if cls is TrafficClass.ATTACK else (0x1B if shape.proto == 6 else None),
        fwd_packets=fwd_packets,
        bwd_packets=packets - fwd_packets if packets > 1 else 0,
        pkt_len_mean=round(min(mean_len, 65535.0), 3),
        iat_mean_s=round(duration / (packets - 1), 6) if packets > 1 else None,
        label=cls,
    )

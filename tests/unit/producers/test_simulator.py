"""The simulator: deterministic, ordered, valid, and shaped like the traffic it claims to be."""

from collections import Counter

import numpy as np
import pytest

from producers.flowmeter import SYN
from producers.simulator import ATTACK_KINDS, SimulationConfig, link_names, simulate
from streams.schemas import FlowRecord, TrafficClass

HOUR_S = 3600.0
MIDNIGHT = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def records(**kwargs) -> list[FlowRecord]:
    return list(simulate(SimulationConfig(**kwargs)))


def test_the_same_seed_gives_the_same_records_and_another_seed_does_not():
    config = SimulationConfig(links=4, duration_s=20, rate=50, seed=7, attack_every_s=10)
    assert list(simulate(config)) == list(simulate(config))
    assert list(simulate(config)) != records(
        links=4, duration_s=20, rate=50, seed=8, attack_every_s=10
    )


def test_records_are_in_event_time_order_within_the_run():
    config = SimulationConfig(links=5, duration_s=30, rate=100, seed=1, attack_every_s=20)
    got = list(simulate(config))
    stamps = [r.ts for r in got]
    assert stamps == sorted(stamps)
    assert config.start_s <= got[0].start
    assert stamps[-1] < config.start_s + config.duration_s  # the run's end cuts open flows
    assert {r.link for r in got} <= set(link_names(5))


def test_each_class_looks_like_its_traffic():
    got = records(links=3, duration_s=120, rate=60, seed=3, attack_every_s=0)
    by_class: dict[TrafficClass | None, list[FlowRecord]] = {}
    for r in got:
        by_class.setdefault(r.label, []).append(r)
    assert set(by_class) == set(TrafficClass) - {TrafficClass.ATTACK, TrafficClass.OTHER}
    counts = Counter({cls: len(rs) for cls, rs in by_class.items()})
    assert counts[TrafficClass.WEB] > counts[TrafficClass.BULK]
    assert all(
        r.proto == 17 and r.dport == 53 and r.packets <= 2 for r in by_class[TrafficClass.DNS]
    )
    assert min(r.bytes for r in by_class[TrafficClass.BULK]) > max(
        r.bytes for r in by_class[TrafficClass.DNS]
    )
    web = by_class[TrafficClass.WEB]
    assert all(r.syn_count == 2 and r.dport in (80, 443) for r in web if r.fin_count == 2)
    # Streaming: a chunk every 2-4 s, so the longest silence within a slice is one period.
    chunked = [r for r in by_class[TrafficClass.STREAMING] if r.ts - r.start > 8]
    assert chunked
    assert all(1.0 < (r.iat_max_s or 0) < 4.5 for r in chunked)
    # VoIP calls: 200-byte RTP packets every 20 ms each way.
    calls = [r for r in by_class[TrafficClass.INTERACTIVE] if r.proto == 17]
    assert calls
    assert all(r.pkt_len_mean == 200 and r.iat_mean_s < 0.0125 for r in calls)


def test_long_flows_are_exported_in_slices_like_an_exporter_with_a_30_s_active_timeout():
    got = records(links=2, duration_s=150, rate=20, seed=5, attack_every_s=0)
    assert all(r.ts - (r.start or r.ts) < 30 for r in got)
    conversations = Counter((r.link, str(r.src), r.sport, str(r.dst), r.dport) for r in got)
    assert max(conversations.values()) > 1  # some were long enough to be sliced


@pytest.mark.parametrize("kind", ATTACK_KINDS)
def test_each_attack_kind_has_its_signature(kind):
    got = records(links=1, duration_s=60, rate=10, seed=3, attack_every_s=5, attack_kinds=(kind,))
    attack = [r for r in got if r.label is TrafficClass.ATTACK]
    assert len(attack) >= 5
    sources = {str(r.src) for r in attack}
    victims = {str(r.dst) for r in attack}
    if kind == "syn_flood":  # spoofed: a new source for every single SYN
        assert all(r.packets == 1 and r.tcp_flags == SYN for r in attack)
        assert len(sources) == len(attack)
    elif kind == "udp_flood":  # a few sources, big datagrams, many of them
        assert all(r.proto == 17 and r.pkt_len_mean >= 1000 for r in attack)
        assert all(r.packets > 100 for r in attack if r.ts - r.start > 5)
    elif kind == "port_scan":  # one scanner walking the victim's ports
        assert len(sources) <= len(victims) * 2
        assert len({r.dport for r in attack}) > 100
        assert all(r.packets <= 3 and r.syn_count >= 1 for r in attack)
    else:  # brute force: many short sessions to SSH or RDP
        assert {r.dport for r in attack} <= {22, 3389}
        assert len({r.sport for r in attack}) == len(attack)
        assert all(r.fwd_packets >= 4 and r.bwd_packets >= 4 for r in attack if r.fin_count)


def test_attacks_come_in_episodes_and_can_be_turned_off():
    got = records(links=2, duration_s=240, rate=10, seed=9, attack_every_s=60)
    seconds = sorted({int(r.start) for r in got if r.label is TrafficClass.ATTACK})
    assert seconds, "no attack in four minutes at one per minute per link"
    assert len(seconds) < 0.9 * 240  # attacked now and then, not all the time
    assert not [
        r
        for r in records(links=2, duration_s=60, rate=10, seed=9, attack_every_s=0)
        if r.label is TrafficClass.ATTACK
    ]


def dispersion(bursts: bool) -> float:
    """Mean variance/mean of the flows started per link per 10 s (1 for a Poisson process)."""
    config = SimulationConfig(
        links=10, duration_s=600, rate=10, seed=2, attack_every_s=0, bursts=bursts
    )
    counts = Counter(
        (r.link, int((r.start - config.start_s) // 10))
        for r in simulate(config)
        if r.packets <= 2  # DNS: one record per flow, stamped where the flow started
    )
    ratios = []
    for link in link_names(config.links):
        per_window = np.array([counts.get((link, i), 0) for i in range(60)])
        if per_window.mean() > 0.5:
            ratios.append(per_window.var() / per_window.mean())
    return float(np.mean(ratios))


def test_bursts_make_a_link_s_traffic_burstier_than_a_poisson_process():
    assert dispersion(bursts=False) < 1.25
    assert dispersion(bursts=True) > 1.35


def test_the_evening_is_busier_than_the_early_morning():
    def flows(start_s: float) -> int:
        got = records(
            links=2,
            duration_s=200,
            rate=20,
            seed=4,
            attack_every_s=0,
            bursts=False,
            start_s=start_s,
        )
        return sum(1 for r in got if r.label is TrafficClass.DNS)

    assert flows(MIDNIGHT + 18.5 * HOUR_S) > 1.4 * flows(MIDNIGHT + 4 * HOUR_S)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"links": 0}, "links"),
        ({"duration_s": 0}, "duration"),
        ({"rate": -1}, "rate"),
        ({"start_s": 5e9}, "start"),
        ({"attack_every_s": -1}, "attack_every_s"),
        ({"attack_kinds": ("smurf",)}, "attack kinds"),
        ({"attack_kinds": ()}, "attack kinds"),
    ],
)
def test_bad_configs_are_refused(kwargs, says):
    with pytest.raises(ValueError, match=says):
        SimulationConfig(**kwargs)

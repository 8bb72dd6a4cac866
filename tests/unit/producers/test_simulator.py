"""The simulator: deterministic, ordered, valid and shaped like traffic."""

from collections import Counter

import pytest

from producers.simulator import SimulationConfig, link_names, simulate
from streams.schemas import TrafficClass


def test_the_same_seed_gives_the_same_records_and_another_seed_does_not():
    config = SimulationConfig(links=4, duration_s=20, rate=50, seed=7)
    assert list(simulate(config)) == list(simulate(config))
    assert list(simulate(config)) != list(
        simulate(SimulationConfig(links=4, duration_s=20, rate=50, seed=8))
    )


def test_records_are_in_event_time_order_within_the_run():
    config = SimulationConfig(links=5, duration_s=30, rate=100, seed=1)
    records = list(simulate(config))
    stamps = [r.ts for r in records]
    assert stamps == sorted(stamps)
    assert config.start_s <= stamps[0]
    assert stamps[-1] < config.start_s + config.duration_s
    assert {r.link for r in records} <= set(link_names(5))


def test_rate_and_mix_look_like_traffic():
    records = list(simulate(SimulationConfig(links=3, duration_s=100, rate=200, seed=3)))
    assert 200 * 100 * 0.7 < len(records) < 200 * 100 * 1.3  # daily factor is 0.7 .. 1.3
    classes = Counter(r.label for r in records)
    assert classes[TrafficClass.WEB] > classes[TrafficClass.BULK]
    assert classes[TrafficClass.DNS] > 0
    bulk = [r.bytes for r in records if r.label is TrafficClass.BULK]
    dns = [r.bytes for r in records if r.label is TrafficClass.DNS]
    assert min(bulk) > max(dns)
    assert all(
        r.packets == 2 and r.proto == 17 and r.dport == 53
        for r in records
        if r.label is TrafficClass.DNS
    )


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"links": 0}, "links"),
        ({"duration_s": 0}, "duration"),
        ({"rate": -1}, "rate"),
        ({"start_s": 5e9}, "start"),
    ],
)
def test_bad_configs_are_refused(kwargs, says):
    with pytest.raises(ValueError, match=says):
        SimulationConfig(**kwargs)

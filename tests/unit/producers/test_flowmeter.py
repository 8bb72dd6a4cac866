"""The flow meter on hand-made packets: directions, timeouts, statistics, order, exact totals."""

import pytest

from producers.capture import TCP, UDP, Packet
from producers.flowmeter import FlowMeter, MeterConfig


def pkt(
    ts, src="10.0.0.1", dst="10.0.0.2", sport=40000, dport=443, size=100, flags=0x10, proto=TCP
):
    return Packet(ts, 0, src, dst, proto, sport, dport, size, flags, None)


def reply(ts, size=1500, flags=0x10):
    return pkt(ts, src="10.0.0.2", dst="10.0.0.1", sport=443, dport=40000, size=size, flags=flags)


def run(packets, **config):
    meter = FlowMeter(MeterConfig(**config), lambda p: "edge")
    out = []
    for p in packets:
        out.extend(meter.add(p))
    out.extend(meter.flush())
    return out


def test_both_directions_make_one_flow_with_per_direction_counts():
    (flow,) = run([pkt(0.0, flags=0x02), reply(0.1, flags=0x12), pkt(0.2), reply(0.5)])
    assert (flow.packets, flow.bytes) == (4, 3200)
    assert (flow.fwd_packets, flow.fwd_bytes, flow.bwd_packets, flow.bwd_bytes) == (2, 200, 2, 3000)
    assert (str(flow.src), flow.sport, str(flow.dst), flow.dport) == (
        "10.0.0.1",
        40000,
        "10.0.0.2",
        443,
    )
    assert (flow.start, flow.ts) == (0.0, 0.5)
    assert (flow.syn_count, flow.ack_count, flow.tcp_flags) == (2, 3, 0x12)
    assert (flow.pkt_len_min, flow.pkt_len_max, flow.pkt_len_mean) == (100, 1500, 800)
    assert flow.iat_min_s == pytest.approx(0.1)
    assert flow.iat_max_s == pytest.approx(0.3)


def test_an_idle_gap_ends_a_flow_and_the_next_packet_starts_another():
    flows = run([pkt(0.0), pkt(1.0), pkt(20.0)], idle_timeout_s=15.0)
    assert [(f.start, f.ts, f.packets) for f in flows] == [(0.0, 1.0, 2), (20.0, 20.0, 1)]


def test_a_long_flow_is_exported_in_active_timeout_slices():
    flows = run([pkt(float(t)) for t in range(0, 65)], idle_timeout_s=15.0, active_timeout_s=30.0)
    assert [(f.start, f.ts, f.packets) for f in flows] == [(0, 29, 30), (30, 59, 30), (60, 64, 5)]
    assert sum(f.bytes for f in flows) == 65 * 100


def test_records_come_out_in_event_time_order_with_exact_totals():
    # a long flow that ends late and short flows that end early, interleaved
    packets = [pkt(t * 0.5, sport=1) for t in range(40)]
    packets += [pkt(t + 0.25, sport=1000 + t, proto=UDP, dport=53, size=80) for t in range(20)]
    packets.sort(key=lambda p: p.ts)
    flows = run(packets, idle_timeout_s=2.0, active_timeout_s=5.0)
    assert [f.ts for f in flows] == sorted(f.ts for f in flows)
    assert sum(f.bytes for f in flows) == sum(p.ip_len for p in packets)
    assert sum(f.packets for f in flows) == len(packets)
    assert all(f.tcp_flags is None for f in flows if f.proto == UDP)


def test_the_same_five_tuple_on_two_links_is_two_flows():
    meter = FlowMeter(MeterConfig(), lambda p: "a" if p.vlan is None else "b")
    tagged = Packet(0.5, 0, "10.0.0.1", "10.0.0.2", TCP, 40000, 443, 100, 0x10, 7)
    list(meter.add(pkt(0.0)))
    list(meter.add(tagged))
    assert sorted(f.link for f in meter.flush()) == ["a", "b"]


@pytest.mark.parametrize(
    "bad", [{"idle_timeout_s": 0}, {"active_timeout_s": -1}, {"scan_interval_s": float("inf")}]
)
def test_bad_timeouts_are_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        MeterConfig(**bad)

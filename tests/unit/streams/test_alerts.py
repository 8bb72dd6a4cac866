"""Alerts: raised and cleared after enough bins, with stable ids, from closed bins and forecasts."""

import json
from pathlib import Path

from models.registry import Registry
from models.runtime import load_forecaster
from streams.alerts import LinkAlerts
from streams.bins import BinConfig
from streams.processor import AlertConfig, LinkProcessor
from streams.schemas import Alert

T0 = 1_767_225_600.0


def test_a_condition_must_hold_for_n_bins_to_raise_and_be_gone_n_bins_to_clear():
    alerts = LinkAlerts(bins=2)
    seen = [
        alerts.observe("a", "attack_share", holds, T0 + k, "warning", {"attack_share": 1.0})
        for k, holds in enumerate([True, False, True, True, True, False, True, False, False])
    ]
    states = [(k, a.state, a.id) for k, a in enumerate(seen) if a is not None]
    raised_id = f"a:attack_share:{T0 + 3:.6f}"
    assert states == [(3, "raised", raised_id), (8, "cleared", raised_id)]
    assert LinkAlerts.from_dict(2, alerts.to_dict()).to_dict() == alerts.to_dict()


class AttackOn22:
    version = "ports-1"

    def classify_inputs(self, inputs):
        return [("attack" if port == 22 else "web", 1.0) for port in inputs["dport"].tolist()]


def _feed(proc, records):
    alerts = []
    for offset, record in enumerate(records):
        proc.on_flow(
            record["link"].encode(),
            json.dumps(record).encode(),
            partition=0,
            offset=offset,
            timestamp_ms=None,
            now_s=1.0,
        )
        out = proc.drain(0.0)
        proc.store_states(out)
        alerts += [Alert.model_validate_json(v) for _, v in out.alerts]
    return alerts


def test_an_attack_heavy_link_raises_an_attack_alert_and_clears_it():
    proc = LinkProcessor(
        BinConfig.of(1.0, 0.0, 10),
        {},
        source_topic="p.flows",
        idle_close_after_s=3.0,
        classifier=AttackOn22(),
        alerting=AlertConfig(attack_share=0.5, bins=3),
    )
    records = [
        {
            "link": "a",
            "ts": T0 + k + 0.5,
            "bytes": 1000,
            "packets": 1,
            "dport": 22 if 5 <= k < 12 else 443,
        }
        for k in range(20)
    ]
    alerts = _feed(proc, records)
    assert [(a.state, a.reason, a.ts - T0) for a in alerts] == [
        ("raised", "attack_share", 8.0),  # bins 5, 6, 7 all attack: raised at the end of bin 7
        ("cleared", "attack_share", 15.0),  # bins 12, 13, 14 clean
    ]
    assert alerts[0].id == alerts[1].id
    assert alerts[0].severity == "critical"
    assert alerts[0].evidence["attack_share"] == 1.0


def test_a_forecast_above_the_links_capacity_raises_an_alert():
    forecaster = load_forecaster(Registry(Path("/nonexistent-registry")).current("forecaster"))
    proc = LinkProcessor(
        BinConfig.of(1.0, 0.0, 10),
        {},
        source_topic="p.flows",
        idle_close_after_s=3.0,
        forecaster=forecaster,
        alerting=AlertConfig(bins=2, capacities={"a": 4_000.0}),
    )
    t = forecaster.window_bins
    records = [{"link": "a", "ts": T0 + k + 0.5, "bytes": 1000, "packets": 1} for k in range(t + 5)]
    alerts = [a for a in _feed(proc, records) if a.reason == "forecast_over_capacity"]
    # 8 kbit/s steadily on a 4 kbit/s link: the second forecast raises it
    assert [(a.state, a.ts - T0) for a in alerts] == [("raised", float(t + 1))]
    assert alerts[0].evidence["capacity_bps"] == 4_000.0
    assert alerts[0].evidence["forecast_bps"] > 4_000.0

"""Synthetic output records for filling a view without a worker: the benchmark and tests.

The records are what the worker and the models publish (the streams.schemas
classes), made deterministic by ``seed``: per link a state, ``windows``
closed 1 s bins with a class mix, a forecast at +1, +10 and +60 s with an interval, and on
every ``alert_every``-th link an active alert.
"""

import random
from typing import Literal

from api.viewstate import ViewState
from streams.schemas import (
    Alert,
    ClassCount,
    Forecast,
    HorizonForecast,
    LinkState,
    ModelAnnouncement,
    TrafficClass,
    WindowRecord,
)

HORIZONS_S = (1.0, 10.0, 60.0)
VERSION = "20260101T000000Z-5e1f5e1f"  # shaped like a registry version name


def link_name(i: int) -> str:
    return f"link-{i:04d}"


def window(link: str, end_s: float, bps: float, history: list[float]) -> WindowRecord:
    """The bin ``[end_s - 1, end_s)`` at ``bps`` and the window of ``history`` (its bins' bps)."""
    recent = [*history[-9:], bps]
    nbytes = int(bps / 8)
    return WindowRecord(
        link=link,
        bin_start_s=end_s - 1.0,
        bin_end_s=end_s,
        bytes=nbytes,
        packets=max(1, nbytes // 900),
        flows=max(1, nbytes // 40_000),
        bps=bps,
        window_start_s=end_s - len(recent),
        window_bins=len(recent),
        window_bytes=int(sum(recent) / 8),
        window_packets=max(1, int(sum(recent) / 8 / 900)),
        window_flows=max(1, int(sum(recent) / 8 / 40_000)),
        window_bps=sum(recent) / len(recent),
        emitted_at_s=end_s + 0.05,
        latency_s=0.01,
        class_mix={
            TrafficClass.WEB: ClassCount(bytes=nbytes * 6 // 10, flows=3),
            TrafficClass.STREAMING: ClassCount(bytes=nbytes * 3 // 10, flows=1),
            TrafficClass.DNS: ClassCount(bytes=nbytes - nbytes * 9 // 10, flows=5),
        },
    )


def forecast(link: str, made_at_s: float, bps: float) -> Forecast:
    return Forecast(
        link=link,
        made_at_s=made_at_s,
        horizons=[
            HorizonForecast(
                horizon_s=h, bps=bps, lower_bps=bps * (1 - 0.05 * h**0.5), upper_bps=bps * 1.3
            )
            for h in HORIZONS_S
        ],
        model_version=VERSION,
        latency_s=0.002,
    )


def fill(
    state: ViewState,
    links: int,
    windows: int = 60,
    *,
    now_s: float,
    alert_every: int = 10,
    seed: int = 1,
) -> None:
    """Apply ``links`` links' worth of records to ``state``, the newest bin ending at ``now_s``."""
    rng = random.Random(seed)
    end = float(int(now_s))
    for i in range(links):
        name = link_name(i)
        level = rng.uniform(1e6, 5e8)
        seen: list[float] = []
        last: WindowRecord | None = None
        for k in range(windows, 0, -1):
            bps = max(0.0, level * rng.uniform(0.6, 1.4))
            last = window(name, end - k + 1, bps, seen)
            seen.append(bps)
            state.apply(
                "windows", name.encode(), last.model_dump_json().encode(), last.emitted_at_s
            )
        state.apply(
            "link-state",
            name.encode(),
            LinkState(
                link=name,
                event_time_s=end,
                watermark_s=end - 2,
                bins_closed=windows,
                total_bytes=int(sum(seen) / 8),
                total_packets=max(1, int(sum(seen) / 8 / 900)),
                total_flows=max(1, int(sum(seen) / 8 / 40_000)),
                late_records=0,
                last_window=last,
                updated_at_s=end + 0.05,
            )
            .model_dump_json()
            .encode(),
        )
        made = forecast(name, end, level)
        state.apply("forecasts", name.encode(), made.model_dump_json().encode(), end + 0.06)
        if alert_every and i % alert_every == 0:
            alert = Alert(
                id=f"util-{name}",
                link=name,
                state="raised",
                severity="warning",
                reason="forecast above 80% of capacity",
                evidence={"forecast_bps": level * 1.3, "capacity_bps": level * 1.5},
                ts=end,
            )
            state.apply("alerts", name.encode(), alert.model_dump_json().encode(), end + 0.07)
    kinds: tuple[Literal["classifier", "forecaster"], ...] = ("classifier", "forecaster")
    for kind in kinds:
        model = ModelAnnouncement(
            kind=kind,
            version=VERSION,
            path=f"models/registry/{kind}/{VERSION}",
            metrics={"macro_f1": 0.9} if kind == "classifier" else {"mae_bps_1s": 1.2e6},
        )
        state.apply("models", kind.encode(), model.model_dump_json().encode(), end)

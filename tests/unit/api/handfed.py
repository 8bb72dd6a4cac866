"""A real view whose state is fed by hand instead of by the Kafka follower, and records for it."""

import time

from api.hub import Hub
from api.view import MaterializedView, Readiness
from api.viewstate import ViewState
from streams.schemas import (
    Alert,
    ClassCount,
    Forecast,
    HorizonForecast,
    LinkState,
    TrafficClass,
    WindowRecord,
)


class HandFedView(MaterializedView):
    """The real view state, hub and routes, without a Kafka follower; readiness is set by hand."""

    def __init__(
        self,
        history_windows: int = 60,
        queue: int = 16,
        capacities: dict[str, float] | None = None,
    ) -> None:
        super().__init__(
            ViewState(history_windows, recent_alerts=5, capacities=capacities),
            Hub(queue, max_clients=4),
        )
        self.is_ready = True

    def readiness(self) -> Readiness:
        if self.is_ready:
            return Readiness(True, "ok")
        return Readiness(False, "the view is still reading")


def state(link: str, total_bytes: int = 10, updated_ago_s: float = 2.0) -> bytes:
    return (
        LinkState(
            link=link,
            event_time_s=100.0,
            watermark_s=98.0,
            bins_closed=3,
            total_bytes=total_bytes,
            total_packets=1,
            total_flows=1,
            late_records=0,
            updated_at_s=time.time() - updated_ago_s,
        )
        .model_dump_json()
        .encode()
    )


def window(
    link: str,
    end_s: float,
    bps: float = 800.0,
    window_bps: float | None = None,
    class_mix: dict[str, tuple[int, int]] | None = None,  # class -> (bytes, flows)
) -> bytes:
    return (
        WindowRecord(
            link=link,
            bin_start_s=end_s - 1,
            bin_end_s=end_s,
            bytes=int(bps / 8),
            packets=1,
            flows=1,
            bps=bps,
            window_start_s=end_s - 10,
            window_bins=10,
            window_bytes=int(bps / 8) * 10,
            window_packets=10,
            window_flows=10,
            window_bps=bps if window_bps is None else window_bps,
            emitted_at_s=time.time(),
            class_mix={
                TrafficClass(c): ClassCount(bytes=b, flows=f)
                for c, (b, f) in (class_mix or {}).items()
            },
        )
        .model_dump_json()
        .encode()
    )


def forecast(link: str, made_at_s: float, bps: float = 1000.0) -> bytes:
    return (
        Forecast(
            link=link,
            made_at_s=made_at_s,
            horizons=[
                HorizonForecast(horizon_s=h, bps=bps, lower_bps=bps / 2, upper_bps=bps * 2)
                for h in (1.0, 10.0)
            ],
            model_version="test-1",
        )
        .model_dump_json()
        .encode()
    )


def alert(link: str, alert_id: str, raised: bool = True, severity: str = "warning") -> bytes:
    return (
        Alert(
            id=alert_id,
            link=link,
            state="raised" if raised else "cleared",
            severity=severity,  # type: ignore[arg-type]  # tests pass one of the Literal's values
            reason="attack share above 50%",
            evidence={"attack_share": 0.7},
            ts=100.0,
        )
        .model_dump_json()
        .encode()
    )

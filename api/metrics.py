"""The API's Prometheus metrics, served at /metrics; one registry per app.

Requests are counted and timed per route template (``/v1/links/{link}``, never
the concrete path, so a link id cannot add a series; a path no route matches
counts as ``<unmatched>``). What the view and the stream know (records read,
view age and lag, stream clients and drops) is read when scraped, so the
follower's and the stream's hot paths do not touch a metric.

The traffic itself is exported only summed over the view's links (bandwidth,
forecast and its interval per horizon, bytes per class, active alerts per reason):
a series per link would be 100,000 series for 100,000 links. Per-link figures are
the REST routes' and the dashboard page's. Every API replica holds the whole view,
so these sums are the same on each replica (take one, not their sum).
"""

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.view import MaterializedView

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ApiMetrics:
    def __init__(self, view: MaterializedView) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "linkcast_api_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "linkcast_api_request_duration_seconds",
            "Time from a request's arrival to its last response byte, by method and route",
            ["method", "route"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.registry.register(_ViewCollector(view))
        self.registry.register(_TrafficCollector(view))
        self._counted: dict[tuple[str, str, int], Counter] = {}
        self._timed: dict[tuple[str, str], Histogram] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        counter = self._counted.get((method, route, status))
        if counter is None:
            counter = self._counted[(method, route, status)] = self.requests.labels(
                method, route, str(status)
            )
        timer = self._timed.get((method, route))
        if timer is None:
            timer = self._timed[(method, route)] = self.latency.labels(method, route)
        counter.inc()
        timer.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _ViewCollector(Collector):
    def __init__(self, view: MaterializedView) -> None:
        self.view = view

    def collect(self) -> Iterator[Metric]:
        state, hub = self.view.state, self.view.hub
        ready = GaugeMetricFamily("linkcast_api_view_ready", "1 when the view is ready, else 0")
        ready.add_metric([], 1.0 if self.view.readiness().ready else 0.0)
        yield ready
        links = GaugeMetricFamily("linkcast_api_view_links", "Links in the view")
        links.add_metric([], float(len(state.links)))
        yield links
        age = GaugeMetricFamily(
            "linkcast_api_view_age_seconds",
            "Seconds since the view last applied a record (absent before the first)",
        )
        if state.last_update_s is not None:
            age.add_metric([], max(0.0, time.time() - state.last_update_s))
        yield age
        lag = GaugeMetricFamily(
            "linkcast_api_view_lag_records",
            "Records of each followed topic behind its partitions' high watermarks",
            labels=["topic"],
        )
        for role, behind in sorted((self.view.follower.lag if self.view.follower else {}).items()):
            lag.add_metric([role], float(behind))
        yield lag
        applied = CounterMetricFamily(
            "linkcast_api_view_records", "Records applied to the view, by topic", labels=["topic"]
        )
        invalid = CounterMetricFamily(
            "linkcast_api_view_invalid_records",
            "Records skipped because they did not validate, by topic",
            labels=["topic"],
        )
        for role in state.applied:
            applied.add_metric([role], float(state.applied[role]))
            invalid.add_metric([role], float(state.invalid[role]))
        yield applied
        yield invalid
        clients = GaugeMetricFamily("linkcast_api_sse_clients", "Clients of GET /v1/stream now")
        clients.add_metric([], float(len(hub.clients)))
        yield clients
        published = CounterMetricFamily(
            "linkcast_api_sse_events", "Events offered to the live stream's clients"
        )
        published.add_metric([], float(hub.published))
        yield published
        dropped = CounterMetricFamily(
            "linkcast_api_sse_dropped_events",
            "Events dropped from slow stream clients' full queues (oldest first)",
        )
        dropped.add_metric([], float(hub.dropped))
        yield dropped


class _TrafficCollector(Collector):
    """The view's links summed: one pass over them per scrape."""

    def __init__(self, view: MaterializedView) -> None:
        self.view = view

    def collect(self) -> Iterator[Metric]:
        bandwidth_bps = 0.0
        forecast_bps: dict[tuple[str, str], float] = {}
        class_bytes: dict[str, float] = {}
        for entry in list(self.view.state.links.values()):
            if entry.window is not None:
                bandwidth_bps += entry.window.bps
                for traffic_class, seen in entry.window.class_mix.items():
                    name = traffic_class.value
                    class_bytes[name] = class_bytes.get(name, 0.0) + seen.bytes
            for h in entry.forecast.horizons if entry.forecast is not None else []:
                horizon = f"{h.horizon_s:g}"
                bounds = (("lower", h.lower_bps), ("median", h.bps), ("upper", h.upper_bps))
                for bound, bps in bounds:
                    forecast_bps[horizon, bound] = forecast_bps.get((horizon, bound), 0.0) + bps
        bandwidth = GaugeMetricFamily(
            "linkcast_api_view_bandwidth_bps",
            "Bits per second of every link's newest closed bin, summed over the view's links",
        )
        bandwidth.add_metric([], bandwidth_bps)
        yield bandwidth
        forecast = GaugeMetricFamily(
            "linkcast_api_view_forecast_bps",
            "Every link's newest forecast at each horizon, summed over the links: the median "
            "and the interval's bounds (summed bounds are wider than the sum's own interval)",
            labels=["horizon_s", "bound"],
        )
        for (horizon, bound), bps in sorted(forecast_bps.items()):
            forecast.add_metric([horizon, bound], bps)
        yield forecast
        mix = GaugeMetricFamily(
            "linkcast_api_view_class_bytes",
            "Bytes per traffic class in every link's newest closed bin, summed over the links",
            labels=["cls"],
        )
        for cls, total in sorted(class_bytes.items()):
            mix.add_metric([cls], total)
        yield mix
        active: dict[tuple[str, str], int] = {}
        for alert in list(self.view.state.active_alerts.values()):
            active[alert.reason, alert.severity] = active.get((alert.reason, alert.severity), 0) + 1
        alerts = GaugeMetricFamily(
            "linkcast_api_view_alerts_active",
            "Link alerts raised and not yet cleared, by reason and severity",
            labels=["reason", "severity"],
        )
        for (reason, severity), alerting in sorted(active.items()):
            alerts.add_metric([reason, severity], float(alerting))
        yield alerts

"""What the worker does with each message, without Faust or Kafka.

The Faust agent (streams.app) hands every message of the flows and ticks
topics to a LinkProcessor and sends what comes back. State goes through
``store``, a mapping from link id to a JSON-ready snapshot: the Faust table in
the worker, a plain dict in unit tests.

Silent links. A link that gets no records still closes its bins, from the
ticks the worker sends itself every ``tick_interval_s`` (one per partition).
On a tick, a link that has had no record for ``idle_close_after_s`` of
processing time has its watermark advanced as if its event time had kept
pace with the wall clock: its largest event time plus the processing time
since its last record, minus the lateness. Each link uses only its own clock,
so one link's timestamps never close another's bins.

Ticks close nothing while the partition still has records waiting (the worker
is catching up on a backlog or a fast replay): there, silence in processing
time says nothing about event time. So replays at 1x or faster give the same
bins whatever the speed; slower than real time, the wall clock outruns event
time and a link's next record can arrive after its bins were closed (late).
"""

import logging
import time
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from streams.alerts import LinkAlerts, attack_share
from streams.bins import BinConfig, ClosedBin, LateRecordError, LinkBins, to_us
from streams.decode import Rejection, decode_flow
from streams.forecasting import BandwidthForecaster, Due, History, forecast_due
from streams.records import classification, dead_letter, window_record
from streams.schemas import (
    FlowRecord,
    LinkState,
    RejectReason,
    WindowRecord,
)
from streams.scoring import ForecastScores, Score

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertConfig:
    """When alerts are raised (see streams.alerts)."""

    attack_share: float = 0.5
    bins: int = 3
    capacities: dict[str, float] = field(default_factory=dict)  # link -> bits/s


class FlowClassifier(Protocol):
    """What the processor needs of a classifier (``models.runtime.Classifier`` is one)."""

    version: str

    def classify(self, records: Any) -> list[tuple[str, float]]: ...


@dataclass
class Outputs:
    """Messages to publish, as (key, value) pairs of bytes, per output topic."""

    windows: list[tuple[bytes, bytes]] = field(default_factory=list)
    classifications: list[tuple[bytes, bytes]] = field(default_factory=list)
    forecasts: list[tuple[bytes, bytes]] = field(default_factory=list)
    alerts: list[tuple[bytes, bytes]] = field(default_factory=list)
    due: list[Due] = field(default_factory=list)  # closed bins to forecast, in one call
    forecast_failures: int = 0
    scores: list[Score] = field(default_factory=list)  # forecasts scored as their bins closed
    closed_links: set[str] = field(default_factory=set)  # links that closed bins
    expired: list[str] = field(default_factory=list)  # links dropped after a long silence
    bin_latencies_s: list[float] = field(default_factory=list)  # last record -> bin close
    forecast_latencies_s: list[float] = field(default_factory=list)  # bin close -> forecast
    inference_s: list[tuple[str, float]] = field(default_factory=list)  # (model, seconds)
    link_states: list[tuple[bytes, bytes | None]] = field(default_factory=list)  # None: forgotten
    deadletters: list[tuple[bytes | None, bytes, RejectReason]] = field(default_factory=list)
    states: dict[str, dict[str, Any]] = field(default_factory=dict)  # link -> snapshot to store
    bins_closed: int = 0
    duplicates: int = 0


@dataclass
class _Link:
    bins: LinkBins
    partition: int
    last_offset: int = -1
    last_wall_s: float = 0.0
    history: History = field(default_factory=lambda: History(0))
    scores: ForecastScores = field(default_factory=ForecastScores)
    alerts: LinkAlerts = field(default_factory=lambda: LinkAlerts(3))


class LinkProcessor:
    """Per-link bins for the partitions this worker owns."""

    def __init__(
        self,
        config: BinConfig,
        store: MutableMapping[str, Any],
        *,
        source_topic: str,
        idle_close_after_s: float,
        expire_after_s: float | None = None,
        classifier: FlowClassifier | None = None,
        emit_features: bool = False,
        forecaster: BandwidthForecaster | None = None,
        alerting: AlertConfig | None = None,
    ) -> None:
        self.config = config
        self.classifier = classifier
        self.forecaster = forecaster
        self.alerting = alerting or AlertConfig()
        self.emit_features = emit_features
        self.store = store
        self.source_topic = source_topic
        self.idle_close_after_s = idle_close_after_s
        self.expire_after_s = expire_after_s
        self._links: dict[str, _Link] = {}
        self._by_partition: dict[int, set[str]] = {}
        self._loaded: set[int] = set()
        self._last_window: dict[str, WindowRecord] = {}
        self._last_offset: dict[int, int] = {}

    @property
    def links_tracked(self) -> int:
        return len(self._links)

    def forget_partitions(self) -> None:
        """Drop everything cached; call when partitions are revoked (state reloads from store)."""
        self._links.clear()
        self._by_partition.clear()
        self._loaded.clear()
        self._last_offset.clear()
        self._last_window.clear()

    def last_offset(self, partition: int) -> int | None:
        """The offset of the last flows message handled on ``partition`` since assignment."""
        return self._last_offset.get(partition)

    # ---- messages ------------------------------------------------------

    def on_flow(
        self,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int,
        offset: int,
        timestamp_ms: int | None,
        now_s: float,
    ) -> Outputs:
        """Validate one flows message, count it, and return what to publish."""
        out = Outputs()
        self._last_offset[partition] = offset
        decoded = decode_flow(key, value)
        if isinstance(decoded, Rejection):
            out.deadletters.append(
                self._dead_letter(key, value, decoded, partition, offset, timestamp_ms, now_s)
            )
            return out
        record: FlowRecord = decoded
        self._load_partition(partition, now_s)
        link = self._link(record.link, partition, now_s)
        if offset <= link.last_offset:
            out.duplicates += 1  # redelivered after a restart; already in the stored state
            return out
        link.last_offset = offset
        cls = None
        if self.classifier is not None:
            started = time.perf_counter()
            cls, classification = self._classification(record)
            out.inference_s.append(("classifier", time.perf_counter() - started))
            out.classifications.append(classification)
        try:
            closed = link.bins.add(
                record.ts, record.bytes, record.packets, 1, arrival_s=now_s, cls=cls
            )
        except LateRecordError:
            watermark = (link.bins.watermark_us or 0) / 1e6
            late = Rejection(
                RejectReason.LATE,
                f"event time {record.ts} is in a bin that closed when the watermark reached "
                f"{watermark}; raise LINKCAST_LATENESS_S to accept records this late",
            )
            out.deadletters.append(
                self._dead_letter(key, value, late, partition, offset, timestamp_ms, now_s)
            )
            if record.link in self._last_window:  # publish the new late count
                self._emit_state(record.link, link, None, now_s, out)
            closed = []
        link.last_wall_s = now_s
        self._emit(record.link, link, closed, now_s, out)
        self._forecast(out)
        out.states[record.link] = self._snapshot(link)
        return out

    def on_tick(self, partition: int, now_s: float, *, caught_up: bool) -> Outputs:
        """Close the bins of links that have been silent, if the partition has no backlog."""
        out = Outputs()
        self._load_partition(partition, now_s)
        if not caught_up:
            return out
        for name in sorted(self._by_partition.get(partition, ())):
            link = self._links[name]
            idle_s = now_s - link.last_wall_s
            max_ts_us = link.bins.max_ts_us
            if idle_s < self.idle_close_after_s or max_ts_us is None:
                continue
            closed = link.bins.advance_us(max_ts_us + to_us(idle_s) - self.config.lateness_us)
            if closed:
                self._emit(name, link, closed, now_s, out)
            elif self.expire_after_s is not None and idle_s >= self.expire_after_s:
                out.expired.append(name)
        self._forecast(out)
        for name in out.closed_links:  # every link with a due forecast closed a bin
            out.states[name] = self._snapshot(self._links[name])
        for name in out.expired:
            self._forget(name, partition)
            out.link_states.append((name.encode(), None))  # the API forgets it too
        return out

    def _forget(self, name: str, partition: int) -> None:
        """Drop a link that has been silent for ``expire_after_s``: memory stays bounded.

        Its bins are all closed by then. If it comes back it starts afresh: new
        totals, and a forecast again once it has a full history.
        """
        self._links.pop(name, None)
        self._last_window.pop(name, None)
        self._by_partition.get(partition, set()).discard(name)

    def store_states(self, out: Outputs) -> None:
        """Write the state changes of ``out`` to the store.

        The worker calls this after it has handed ``out``'s messages to the
        producer, so that the stored state never runs ahead of what was sent.
        """
        for name, snapshot in out.states.items():
            self.store[name] = snapshot
        for name in out.expired:
            self.store.pop(name, None)  # a table deletion: a tombstone in its changelog

    # ---- forecasts -----------------------------------------------------

    @property
    def _history_bins(self) -> int:
        return 0 if self.forecaster is None else self.forecaster.window_bins

    def _forecast(self, out: Outputs) -> None:
        """Forecast every bin that closed while handling one message, in one model call."""
        if not out.due or self.forecaster is None:
            return
        try:
            started = time.perf_counter()
            out.forecasts, expected = forecast_due(self.forecaster, out.due, self.config.bin_s)
            out.inference_s.append(("forecaster", time.perf_counter() - started))
            done_s = time.time()
            out.forecast_latencies_s += [max(0.0, done_s - d.closed_at_s) for d in out.due]
        except Exception as exc:  # a model failure costs these forecasts, never the stream
            out.forecast_failures = len(out.due)
            log.error("forecasting %d bins failed: %r", len(out.due), exc)
            return
        for name, target, forecast in expected:
            self._links[name].scores.expect(target, forecast)
        per_due = len(self.forecaster.horizons)  # forecast_due lists them due by due
        for k, d in enumerate(out.due):
            self._check_capacity(
                d, [f for _, _, f in expected[k * per_due : (k + 1) * per_due]], out
            )

    # ---- alerts --------------------------------------------------------

    def _check_bin(
        self, name: str, link: _Link, b: ClosedBin, scored: list[Score], out: Outputs
    ) -> None:
        """The conditions a closed bin decides: attack share and unexpected change."""
        observed = []
        if self.classifier is not None:
            share = attack_share(b.class_mix, b.bytes)
            observed.append(
                link.alerts.observe(
                    name,
                    "attack_share",
                    share >= self.alerting.attack_share,
                    b.end_s,
                    "critical" if share >= 0.9 else "warning",
                    {"attack_share": share, "bin_bytes": float(b.bytes)},
                    self.classifier.version,
                )
            )
        next_bin = [s for s in scored if abs(s.horizon_s - self.config.bin_s) < 1e-9]
        if next_bin and self.forecaster is not None:
            s = next_bin[0]
            observed.append(
                link.alerts.observe(
                    name,
                    "unexpected_change",
                    not s.inside,
                    b.end_s,
                    "warning",
                    {"actual_bps": s.actual_bps, "abs_error_bps": s.abs_error_bps},
                    self.forecaster.version,
                )
            )
        out.alerts += [(name.encode(), a.model_dump_json().encode()) for a in observed if a]

    def _check_capacity(
        self, due: Due, forecasts: list[tuple[float, float, float, float]], out: Outputs
    ) -> None:
        """A forecast above the link's capacity (only links with a known capacity)."""
        capacity = self.alerting.capacities.get(due.link)
        if capacity is None or self.forecaster is None:
            return
        horizon_s, lower, median, _ = max(forecasts, key=lambda f: f[2])
        alert = self._links[due.link].alerts.observe(
            due.link,
            "forecast_over_capacity",
            median > capacity,
            due.points[-1][0] + self.config.bin_s,
            "critical" if lower > capacity else "warning",
            {"capacity_bps": capacity, "forecast_bps": median, "horizon_s": horizon_s},
            self.forecaster.version,
        )
        if alert is not None:
            out.alerts.append((due.link.encode(), alert.model_dump_json().encode()))

    # ---- state ---------------------------------------------------------

    def _load_partition(self, partition: int, now_s: float) -> None:
        """Cache every stored link of ``partition`` (once per assignment)."""
        if partition in self._loaded:
            return
        self._loaded.add(partition)
        for name, snapshot in list(self.store.items()):
            if name in self._links or not isinstance(snapshot, dict):
                continue
            if snapshot.get("partition") != partition:
                continue
            self._restore(name, snapshot, now_s)

    def _link(self, name: str, partition: int, now_s: float) -> _Link:
        link = self._links.get(name)
        if link is not None:
            return link
        snapshot = self.store.get(name)
        restored = self._restore(name, snapshot, now_s) if snapshot is not None else None
        if restored is not None:
            return restored
        link = self._links[name] = _Link(
            LinkBins(self.config),
            partition,
            -1,
            now_s,
            History(self._history_bins),
            ForecastScores(),
            LinkAlerts(self.alerting.bins),
        )
        self._by_partition.setdefault(partition, set()).add(name)
        return link

    def _restore(self, name: str, snapshot: dict[str, Any], now_s: float) -> _Link | None:
        try:
            bins = LinkBins.from_dict(snapshot["bins"], self.config)
            partition = int(snapshot["partition"])
            last_offset = int(snapshot["last_offset"])
            history = History.from_list(self._history_bins, snapshot.get("history"))
            scores = ForecastScores.from_dict(snapshot.get("scores"))
            alerts = LinkAlerts.from_dict(self.alerting.bins, snapshot.get("alerts"))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("starting link %s afresh: its stored state is unusable (%s)", name, exc)
            return None
        link = self._links[name] = _Link(
            bins, partition, last_offset, now_s, history, scores, alerts
        )
        self._by_partition.setdefault(partition, set()).add(name)
        return link

    @staticmethod
    def _snapshot(link: _Link) -> dict[str, Any]:
        return {
            "bins": link.bins.to_dict(),
            "partition": link.partition,
            "last_offset": link.last_offset,
            "history": link.history.to_list(),
            "scores": link.scores.to_dict(),
            "alerts": link.alerts.to_dict(),
        }

    # ---- outputs -------------------------------------------------------

    def _emit(
        self, name: str, link: _Link, closed: list[ClosedBin], now_s: float, out: Outputs
    ) -> None:
        if not closed:
            return
        key = name.encode()
        bin_s = self.config.bin_s
        last: WindowRecord | None = None
        for b in closed:
            last = window_record(name, b, bin_s, now_s)
            if last.latency_s is not None:
                out.bin_latencies_s.append(last.latency_s)
            out.windows.append((key, last.model_dump_json().encode()))
            scored = link.scores.close(b.index, b.bytes * 8 / bin_s)
            out.scores += scored
            self._check_bin(name, link, b, scored, out)
            link.history.size = self._history_bins
            link.history.add(b, bin_s)
            if self.forecaster is not None and link.history.full:
                out.due.append(Due(name, b.index, tuple(link.history.points), now_s))
        out.bins_closed += len(closed)
        out.closed_links.add(name)
        self._emit_state(name, link, last, now_s, out)

    def _emit_state(
        self, name: str, link: _Link, last: WindowRecord | None, now_s: float, out: Outputs
    ) -> None:
        bins = link.bins
        if last is None:
            last = self._last_window.get(name)
        else:
            self._last_window[name] = last
        state = LinkState(
            link=name,
            event_time_s=(bins.max_ts_us or 0) / 1e6,
            watermark_s=(bins.watermark_us or 0) / 1e6,
            bins_closed=bins.bins_closed,
            total_bytes=bins.total_bytes,
            total_packets=bins.total_packets,
            total_flows=bins.total_flows,
            late_records=bins.late_records,
            last_window=last,
            updated_at_s=now_s,
            forecast_error=link.scores.errors(),
        )
        out.link_states.append((name.encode(), state.model_dump_json().encode()))

    def _classification(self, record: FlowRecord) -> tuple[str, tuple[bytes, bytes]]:
        """The class of one flow, and the classification message to publish.

        Every valid flow is classified on arrival, a late one too: lateness is about
        its bin, which has closed, not about what the flow is. A late flow is then
        dead-lettered as ``late`` and not counted in any bin or class mix.
        """
        assert self.classifier is not None
        cls, message = classification(record, self.classifier, self.emit_features)
        return cls, (record.link.encode(), message)

    def _dead_letter(
        self,
        key: bytes | None,
        value: bytes | None,
        rejection: Rejection,
        partition: int,
        offset: int,
        timestamp_ms: int | None,
        now_s: float,
    ) -> tuple[bytes | None, bytes, RejectReason]:
        return (
            key,
            dead_letter(
                key, value, rejection, self.source_topic, partition, offset, timestamp_ms, now_s
            ),
            rejection.reason,
        )

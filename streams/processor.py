"""What the worker does with each message, without Faust or Kafka.

The Faust agent (streams.app) hands every message of the flows and ticks
topics to a LinkProcessor, and now and then (after a batch of messages, or
when no more are waiting) calls ``drain`` and sends what comes back. State
goes through ``store``, a mapping from link id to the link's snapshot as JSON
bytes (encoded once, at the drain): the Faust table in the worker, a plain
dict in unit tests.

Cheap per record, batched per drain. A record only updates its link's bins
in memory (and is classified). Bins that closed are handled at the drain:
window records, scoring, alerts, and one forecast model call for every bin
that closed since the last drain (a link's bins are scored in bin order,
whatever the batch). A link that changed is written to the store at the next
drain that stores (the worker's checkpoints), not once per record or per bin.

Nothing lost. A record whose link has not been written since is "pending":
``safe_offset`` says below which offset of a partition every record is in the
store, and the worker acknowledges (so lets Kafka commit) only those. After a
crash the records above it are read again; those a link's stored state already
holds (its ``last_offset``) are skipped, the others counted once. Links that
stay pending long (a link whose open bin has not closed yet) are written by
``persist_before`` so that the acknowledged offset keeps up.

Silent links. A link that gets no records still closes its bins, from the
ticks the worker sends itself every ``tick_interval_s`` (one per partition).
On a tick, a link that has had no record for ``idle_close_after_s`` of
processing time has its watermark advanced as if its event time had kept
pace with the wall clock: its largest event time plus the processing time
since its last record, minus the lateness. Each link uses only its own clock,
so one link's timestamps never close another's bins.

Ticks close nothing while the partition still has records waiting (the worker
is catching up on a backlog or a fast replay): there, silence in processing
time says nothing about event time. Nor does a silence the worker could not
have heard: when a partition's ticks stop for longer than ``tick_gap_s`` (Kafka
was down, or the worker paused), producers have been holding their records
too, so idle time on that partition counts again only from ``resume_grace_s``
after the next tick, once they have had time to deliver them. (Counting the
outage closed a 49 s backlog's bins before it came, and 2,091 records of one
link went to the dead-letter topic as late.)

So replays at 1x or faster give the same bins whatever the speed; slower than
real time, the wall clock outruns event time and a link's next record can
arrive after its bins were closed (late).
"""

import contextlib
import logging
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import orjson

from models.features import FLOW_INPUTS, feature_table
from streams.alerts import LinkAlerts, attack_share
from streams.batchdecode import decode_flows
from streams.bins import US_PER_S, BinConfig, ClosedBin, LateRecordError, LinkBins, to_us
from streams.decode import Rejection
from streams.forecasting import BandwidthForecaster, Due, History, forecast_due
from streams.records import (
    classification,
    dead_letter,
    encode,
    link_state,
    to_json,
    window_record,
)
from streams.schemas import RejectReason
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

    def classify_inputs(self, inputs: Mapping[str, np.ndarray]) -> list[tuple[str, float]]:
        """(class, confidence) per flow, given as columns by field name (NaN: unknown)."""
        ...


@dataclass
class Outputs:
    """Messages to publish, as (key, value) pairs of bytes, per output topic."""

    windows: list[tuple[bytes, bytes]] = field(default_factory=list)
    classifications: list[tuple[bytes, bytes]] = field(default_factory=list)
    forecasts: list[tuple[bytes, bytes]] = field(default_factory=list)
    alerts: list[tuple[bytes, bytes]] = field(default_factory=list)
    forecast_failures: int = 0
    scores: list[Score] = field(default_factory=list)  # forecasts scored as their bins closed
    expired: dict[str, int] = field(default_factory=dict)  # link -> partition, long silent
    bin_latencies_s: list[float] = field(default_factory=list)  # last record -> bin close
    forecast_latencies_s: list[float] = field(default_factory=list)  # bin close -> forecast
    inference_s: list[tuple[str, float]] = field(default_factory=list)  # (model, seconds)
    link_states: list[tuple[bytes, bytes | None]] = field(default_factory=list)  # None: forgotten
    deadletters: list[tuple[bytes | None, bytes, RejectReason]] = field(default_factory=list)
    # store key (a link, or a partition's marker) -> (its partition, the JSON value to
    # store, or None to delete it)
    states: dict[str, tuple[int, bytes | None]] = field(default_factory=dict)
    bins_closed: int = 0
    duplicates: int = 0
    handled: int = 0  # messages handled (records and ticks)
    classifier_s: float = 0.0  # time spent classifying

    @property
    def links_stored(self) -> int:
        """How many of ``states`` are links' (the others are partitions' markers)."""
        return sum(1 for name in self.states if not _is_marker(name))

    def states_by_partition(self) -> dict[int, list[tuple[str, bytes | None]]]:
        """The store values to write (None: to delete), by partition."""
        changes: dict[int, list[tuple[str, bytes | None]]] = {}
        for name, (partition, value) in self.states.items():
            changes.setdefault(partition, []).append((name, value))
        return changes


@dataclass
class _Link:
    bins: LinkBins
    partition: int
    last_offset: int = -1
    last_wall_s: float = 0.0
    history: History = field(default_factory=lambda: History(0))
    scores: ForecastScores = field(default_factory=ForecastScores)
    alerts: LinkAlerts = field(default_factory=lambda: LinkAlerts(3))
    closed: list[ClosedBin] = field(default_factory=list)  # since the last drain, in order


#: A flows message as the processor takes it: key, value, partition, offset, timestamp (ms).
FlowMessage = tuple[bytes | None, bytes | None, int, int, int | None]


def _stored(name: str, value: Any) -> dict[str, Any] | None:
    """A store value (JSON bytes) decoded; None if there is none or it is unusable, which
    starts the link afresh."""
    if value is None:
        return None
    try:
        decoded = orjson.loads(value)
    except (orjson.JSONDecodeError, TypeError) as exc:
        log.warning("ignoring the stored value of %s: not JSON (%s)", name, exc)
        return None
    if not isinstance(decoded, dict):
        log.warning("ignoring the stored value of %s: not a JSON object", name)
        return None
    return decoded


def write_states(store: MutableMapping[str, Any], changes: list[tuple[str, bytes | None]]) -> None:
    """Write states to a store; None deletes a link's state (a tombstone in a table's
    changelog) without reading it.

    ``store.pop`` would read the state first (a Faust table is a ``MutableMapping``):
    from RocksDB, through its block cache, which each expired link's state then
    filled. In a ``linkcast soak`` (about 1,000 links expiring a minute) the caches
    held 43 MiB at 300 s and grew by about 8.6 MiB a minute, which its memory test
    judged as growth.
    """
    for name, value in changes:
        if value is not None:
            store[name] = value
            continue
        # a dict, Faust's memory store and CommittedState raise KeyError for a key they
        # do not hold; Faust's RocksDB store writes a delete whatever it holds
        with contextlib.suppress(KeyError):
            del store[name]


def partition_key(partition: int) -> str:
    """The store key of a partition's next offset not in the store (no link id has a space)."""
    return f"partition {partition}"


def _is_marker(name: str) -> bool:
    """Whether a store key is a partition's marker (``partition_key``), not a link."""
    return " " in name


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
        tick_gap_s: float = 5.0,
        resume_grace_s: float = 10.0,
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
        self.tick_gap_s = tick_gap_s
        self.resume_grace_s = resume_grace_s
        self._last_tick_s: dict[int, float] = {}  # partition -> processing time of its last tick
        self._idle_from_s: dict[int, float] = {}  # partition -> silence before this not counted
        self.generation = 0  # moves on at each forget_partitions
        self._links: dict[str, _Link] = {}
        self._by_partition: dict[int, set[str]] = {}
        self._loaded: set[int] = set()
        self._last_window: dict[str, Any] = {}  # link -> its last window_record
        self._last_offset: dict[int, int] = {}
        # partition -> the next offset its stored marker gave at assignment (None: no
        # marker); read once, as every message of a replayed backlog asks for it
        self._stored_next: dict[int, int | None] = {}
        self._started: set[int] = set()  # partitions whose start in Kafka is known (start_from)
        self._out = Outputs()  # what the messages since the last drain have made
        self._touched: dict[str, None] = {}  # links to publish at the drain, in order
        self._unstored: dict[str, None] = {}  # links changed since they were last stored
        # Per partition, the links with records not in the store yet, each with the offset
        # of its first such record. Offsets only grow, so the first entry is the smallest.
        self._pending: dict[int, dict[str, int]] = {}

    @property
    def links_tracked(self) -> int:
        return len(self._links)

    def forget_partitions(self) -> None:
        """Drop everything cached; call when partitions are revoked (state reloads from store).

        Records not in the store yet are dropped too: they were not acknowledged,
        so Kafka delivers them again to whichever worker gets their partition.
        ``generation`` moves on: a caller that awaited meanwhile can tell.
        """
        self.generation += 1
        self._links.clear()
        self._by_partition.clear()
        self._loaded.clear()
        self._last_offset.clear()
        self._stored_next.clear()
        self._started.clear()
        self._last_tick_s.clear()
        self._idle_from_s.clear()
        self._last_window.clear()
        self._out = Outputs()
        self._touched.clear()
        self._unstored.clear()
        self._pending.clear()

    def last_offset(self, partition: int) -> int | None:
        """The offset of the last flows message handled on ``partition`` since assignment."""
        return self._last_offset.get(partition)

    def last_tick_s(self, partition: int) -> float | None:
        """The processing time of the last tick handled on ``partition`` since assignment."""
        return self._last_tick_s.get(partition)

    def partition_of(self, link: str) -> int | None:
        """The flows partition of a link this worker holds (None: not held)."""
        held = self._links.get(link)
        return None if held is None else held.partition

    def safe_offset(self, partition: int) -> int | None:
        """Every flows message of ``partition`` below this offset is in the store (or needs
        nothing stored) once the last drain's states are written: it may be acknowledged."""
        pending = self._pending.get(partition)
        if pending:
            return next(iter(pending.values()))
        last = self._last_offset.get(partition)
        return None if last is None else last + 1

    def expected_offset(self, partition: int) -> int | None:
        """The offset the next flows message of ``partition`` should have: one past the last
        handled since assignment, else the next one not in the store when it was written,
        or where Kafka starts the partition (``start_from``) if that is further on."""
        last = self._last_offset.get(partition)
        if last is not None:
            return last + 1
        if partition not in self._stored_next:
            marker = _stored(partition_key(partition), self.store.get(partition_key(partition)))
            self._stored_next[partition] = None if marker is None else int(marker["next_offset"])
        return self._stored_next[partition]

    def start_known(self, partition: int) -> bool:
        """Whether ``expected_offset`` of ``partition`` can be trusted: a message was handled
        since assignment, or ``start_from`` was told where Kafka starts it."""
        return partition in self._last_offset or partition in self._started

    def start_from(self, partition: int, offset: int | None) -> None:
        """Where Kafka starts ``partition`` at this assignment: the group's committed offset,
        or the partition's first offset if nothing is committed (None: unknown).

        Every record below a committed offset was acknowledged, so it is stored or
        needed nothing stored (a dead letter does not move the marker). Without a
        marker, a first message past this offset means Kafka's client skipped
        records, which the worker then reads again.
        """
        marker = self.expected_offset(partition)
        if offset is not None and (marker is None or offset > marker):
            self._stored_next[partition] = offset
        self._started.add(partition)

    def skip_to(self, partition: int, offset: int) -> None:
        """Accept that the flows messages of ``partition`` below ``offset`` do not exist."""
        self._last_offset[partition] = offset - 1

    @property
    def waiting(self) -> int:
        """Messages handled since the last drain."""
        return self._out.handled

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
    ) -> None:
        """Validate one flows message and count it; its outputs come with the next drain."""
        self.on_flows([(key, value, partition, offset, timestamp_ms)], now_s)

    def on_flows(self, messages: list[FlowMessage], now_s: float) -> None:
        """``on_flow`` for messages in offset order per partition: decoded together
        (``decode_flows``), their flows classified in one model call (one call per flow
        cost more than the tree walk itself), then counted one by one.

        Every valid flow is classified on arrival, a late one too: lateness is about
        its bin, which has closed, not about what the flow is. A late flow is then
        dead-lettered as ``late`` and not counted in any bin or class mix. A flow
        redelivered after a restart (already in its link's stored state) goes through
        the model with the batch, but gets no message and is not counted again.
        """
        out = self._out
        out.handled += len(messages)
        self._last_offset.update((m[2], m[3]) for m in messages)  # in offset order
        # the classifier's inputs, or only what the counting needs; the wall clock for the
        # future check, as ever
        columns = FLOW_INPUTS if self.classifier is not None else ("ts", "start")
        flows = decode_flows([(m[0], m[1]) for m in messages], columns=columns)
        for i, rejection in flows.rejected:
            out.deadletters.append(self._dead_letter(messages[i], rejection, now_s))
        if not flows.records:
            return
        inputs = {name: flows.numbers[:, j] for j, name in enumerate(columns)}
        times = inputs["ts"]
        ts_us: list[int] = np.rint(times * US_PER_S).astype(np.int64).tolist()  # as to_us
        answers: list[tuple[str, float]] | None = None
        features: list[list[float]] | None = None
        version = ""
        if self.classifier is not None:
            started = time.perf_counter()
            version = self.classifier.version
            answers = self.classifier.classify_inputs(inputs)
            out.classifier_s += time.perf_counter() - started
            if self.emit_features:
                features = feature_table(inputs).tolist()
        links, loaded, pending, touched = self._links, self._loaded, self._pending, self._touched
        classifications, expired = out.classifications, out.expired
        for k, (i, record) in enumerate(zip(flows.positions, flows.records, strict=True)):
            message = messages[i]
            key, _, partition, offset, _ = message
            name = record.link
            if partition not in loaded:
                self._load_partition(partition, now_s)
            link = links.get(name)
            if link is None:
                link = self._link(name, partition, now_s)
            if expired:
                expired.pop(name, None)  # it came back before the drain forgot it
            if offset <= link.last_offset:
                out.duplicates += 1  # redelivered after a restart; already in the stored state
                continue
            link.last_offset = offset
            waiting = pending.get(partition)
            if waiting is None:
                waiting = pending[partition] = {}
            if name not in waiting:
                waiting[name] = offset
            link.last_wall_s = now_s
            cls = None
            if answers is not None:
                cls, confidence = answers[k]
                features_k = None if features is None else features[k]
                message_value = classification(record, cls, confidence, version, features_k)
                classifications.append((key, message_value))  # type: ignore[arg-type]  # its link
            try:
                closed = link.bins.add_us(ts_us[k], record.bytes, record.packets, 1, now_s, cls)
            except LateRecordError:
                self._late(message, record.ts, link, now_s)
                touched[name] = None  # publish and store the new late count
                continue
            if closed:
                link.closed += closed
                touched[name] = None

    def _late(self, message: FlowMessage, ts: float, link: _Link, now_s: float) -> None:
        """Dead-letter a flow whose bin has closed."""
        watermark = (link.bins.watermark_us or 0) / 1e6
        late = Rejection(
            RejectReason.LATE,
            f"event time {ts} is in a bin that closed when the watermark reached "
            f"{watermark}; raise LINKCAST_LATENESS_S to accept records this late",
        )
        self._out.deadletters.append(self._dead_letter(message, late, now_s))

    def on_tick(self, partition: int, now_s: float, *, caught_up: bool) -> None:
        """Close the bins of links that have been silent, if the partition has no backlog."""
        self._out.handled += 1
        self._load_partition(partition, now_s)
        last_tick_s = self._last_tick_s.get(partition)
        self._last_tick_s[partition] = now_s
        if last_tick_s is not None and now_s - last_tick_s > self.tick_gap_s:
            log.warning(
                "flows partition %d: no tick for %.0f s; links' silence counts again from "
                "%.0f s on, when producers have delivered what they held",
                partition,
                now_s - last_tick_s,
                self.resume_grace_s,
            )
            self._idle_from_s[partition] = now_s + self.resume_grace_s
        if not caught_up:
            return
        idle_from_s = self._idle_from_s.get(partition, 0.0)
        for name in sorted(self._by_partition.get(partition, ())):
            link = self._links[name]
            idle_s = now_s - max(link.last_wall_s, idle_from_s)
            max_ts_us = link.bins.max_ts_us
            if idle_s < self.idle_close_after_s or max_ts_us is None:
                continue
            closed = link.bins.advance_us(max_ts_us + to_us(idle_s) - self.config.lateness_us)
            if closed:
                link.closed += closed
                self._touched[name] = None
            elif (
                self.expire_after_s is not None
                and idle_s >= self.expire_after_s
                and name not in self._touched
            ):
                self._out.expired[name] = partition

    def persist_before(self, partition: int, offset: int) -> None:
        """Store, at the next drain that stores, every link of ``partition`` whose first
        record not yet stored is below ``offset``: ``safe_offset`` then passes it.

        Stored only: a link's state message comes when its bins close (or a record is
        late), not at the worker's checkpoints: at 100,000 links a checkpoint stores most
        of them, and a state message for each there too cost time. Its totals move only
        as bins close; its event time and watermark are published with the next one.
        """
        unstored = self._unstored
        for name, first in self._pending.get(partition, {}).items():
            if first >= offset:
                break
            unstored[name] = None

    def drain(self, now_s: float, *, mark_all: bool = False, store: bool = True) -> Outputs:
        """Everything the messages since the last drain made, with their bins' windows,
        scores, alerts and forecasts, and the states to store; then start afresh.

        ``store``: give the states of every link changed since the last drain that
        stored, encoded; otherwise keep them for that drain (the worker stores at its
        checkpoints only: a link closing bins at every drain is written once, not at
        each). A partition's next offset is stored with its links' states;
        ``mark_all``: for every partition with records handled (a transaction commits
        all their offsets).
        """
        out, self._out = self._out, Outputs()
        touched, self._touched = list(self._touched), {}
        if out.classifier_s:
            out.inference_s.append(("classifier", out.classifier_s))
        self._close_bins(touched, now_s, out)
        for name in touched:
            self._emit_state(name, self._links[name], now_s, out)
            self._unstored[name] = None
        for name, partition in out.expired.items():
            self._forget(name, partition)
            self._pending.get(partition, {}).pop(name, None)
            out.link_states.append((name.encode(), None))  # the API forgets it too
            out.states[name] = (partition, None)
        if not store:
            return out
        unstored, self._unstored = self._unstored, {}
        for name in unstored:
            link = self._links[name]
            # encoded now: the link's bins go on changing once this drain is over
            out.states[name] = (link.partition, to_json(self._snapshot(link)))
            self._pending.get(link.partition, {}).pop(name, None)
        marked = self._last_offset if mark_all else {p for p, _ in out.states.values()}
        for partition in marked:
            next_offset = self.safe_offset(partition)
            if next_offset is not None:
                marker = {"partition": partition, "next_offset": next_offset}
                out.states[partition_key(partition)] = (partition, to_json(marker))
        return out

    def _forget(self, name: str, partition: int) -> None:
        """Drop a link that has been silent for ``expire_after_s``: memory stays bounded.

        Its bins are all closed by then. If it comes back it starts afresh: new
        totals, and a forecast again once it has a full history.
        """
        self._links.pop(name, None)
        self._last_window.pop(name, None)
        self._unstored.pop(name, None)
        self._by_partition.get(partition, set()).discard(name)

    def store_states(self, out: Outputs) -> None:
        """Write the state changes of ``out`` to the store (the worker does it partition by
        partition, after handing ``out``'s messages to the producer)."""
        for changes in out.states_by_partition().values():
            write_states(self.store, changes)

    def stored(self, name: str) -> dict[str, Any] | None:
        """What the store holds for a link (or a partition's marker), decoded."""
        return _stored(name, self.store.get(name))

    # ---- closed bins and forecasts ---------------------------------------

    @property
    def _history_bins(self) -> int:
        return 0 if self.forecaster is None else self.forecaster.window_bins

    def _close_bins(self, names: list[str], now_s: float, out: Outputs) -> None:
        """Windows, forecasts, scores and alerts of the bins that ``names`` closed.

        A forecast depends on its link's history only, so every closed bin of
        every link is forecast in one model call. Scoring then goes bin by bin
        in each link's order: bin k is scored against the forecasts made at the
        bins before it, then the forecast made at bin k starts waiting for its
        targets, as if each bin had been handled alone.
        """
        bin_s = self.config.bin_s
        links = [(name, self._links[name]) for name in names if self._links[name].closed]
        due: list[Due] = []
        made_at: dict[tuple[str, int], int] = {}  # (link, bin index) -> its place in due
        for name, link in links:
            for b in link.closed:
                window = window_record(name, b, bin_s, now_s)
                if window.latency_s is not None:
                    out.bin_latencies_s.append(window.latency_s)
                out.windows.append((name.encode(), encode(window)))
                self._last_window[name] = window
                link.history.resize(self._history_bins)
                link.history.add(b, bin_s)
                if self.forecaster is not None and link.history.full:
                    made_at[(name, b.index)] = len(due)
                    due.append(Due(name, b.index, link.history.window(), now_s))
        expected = self._forecast(due, out)
        for name, link in links:
            for b in link.closed:
                scored = link.scores.close(b.index, b.bytes * 8 / bin_s)
                out.scores += scored
                self._check_bin(name, link, b, scored, out)
                k = made_at.get((name, b.index))
                if k is not None and expected:
                    for target, forecast in expected[k]:
                        link.scores.expect(target, forecast)
                    if expected[k]:
                        self._check_capacity(due[k], [f for _, f in expected[k]], out)
            out.bins_closed += len(link.closed)
            link.closed = []

    def _forecast(
        self, due: list[Due], out: Outputs
    ) -> list[list[tuple[int, tuple[float, float, float, float]]]]:
        """Forecast the due bins in one model call; per due bin, its (target bin, forecast)s."""
        if not due or self.forecaster is None:
            return []
        try:
            started = time.perf_counter()
            messages, expected = forecast_due(self.forecaster, due, self.config.bin_s)
            out.inference_s.append(("forecaster", time.perf_counter() - started))
            done_s = time.time()
            out.forecast_latencies_s += [
                max(0.0, done_s - d.closed_at_s) for d, e in zip(due, expected, strict=True) if e
            ]
        except Exception as exc:  # a model failure costs these forecasts, never the stream
            out.forecast_failures += len(due)
            log.error("forecasting %d bins failed: %r", len(due), exc)
            return []
        refused = sum(1 for e in expected if not e)
        if refused:
            out.forecast_failures += refused
            log.error("the forecaster gave %d windows a negative or non-finite bandwidth", refused)
        out.forecasts += messages
        return expected

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
            float(due.rows[-1, 0]) + self.config.bin_s,
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
        for name, value in list(self.store.items()):
            if name in self._links or _is_marker(name):
                continue
            snapshot = _stored(name, value)
            if snapshot is None or snapshot.get("partition") != partition:
                continue
            self._restore(name, snapshot, now_s)

    def _link(self, name: str, partition: int, now_s: float) -> _Link:
        link = self._links.get(name)
        if link is not None:
            return link
        snapshot = _stored(name, self.store.get(name))
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
            history = History.from_stored(self._history_bins, snapshot.get("history"))
            scores = ForecastScores.from_dict(snapshot.get("scores"))
            alerts = LinkAlerts.from_dict(self.alerting.bins, snapshot.get("alerts"))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
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
            "history": link.history.to_stored(),
            "scores": link.scores.to_dict(),
            "alerts": link.alerts.to_dict(),
        }

    # ---- outputs -------------------------------------------------------

    def _emit_state(self, name: str, link: _Link, now_s: float, out: Outputs) -> None:
        """The link's state message: totals, watermark, last window, forecast error."""
        state = link_state(
            name, link.bins, self._last_window.get(name), link.scores.errors(), now_s
        )
        out.link_states.append((name.encode(), encode(state)))

    def _dead_letter(
        self, message: FlowMessage, rejection: Rejection, now_s: float
    ) -> tuple[bytes | None, bytes, RejectReason]:
        key, value, partition, offset, timestamp_ms = message
        return (
            key,
            dead_letter(
                key, value, rejection, self.source_topic, partition, offset, timestamp_ms, now_s
            ),
            rejection.reason,
        )

"""The Faust worker: wiring only. What happens to a message is in streams.processor."""

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import faust
from faust.types import TP
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams import metrics
from streams.acks import DRAIN_EVERY, DRAIN_IDLE_S, Acknowledger
from streams.admin import committed_offsets
from streams.bins import BinConfig
from streams.capacities import load_capacities
from streams.changelog import ChangelogWriter
from streams.committed import CommittedState
from streams.flowsreader import Commits, FlowsReader, Held, flows_group
from streams.forecasting import select_horizons
from streams.modelwatch import ModelFollower
from streams.outputs import send_batched
from streams.partitioner import KeyPartitioner
from streams.processor import AlertConfig, LinkProcessor, Outputs, write_states
from streams.scoring import Score
from streams.settings import StreamSettings
from streams.topics import Topics
from streams.transactions import (
    NEVER_S,
    Transactions,
    ask_broker_for_highwaters,
    delivered,
    discard_local_state,
)

log = logging.getLogger(__name__)


def broker_urls(bootstrap: str) -> list[str]:
    """'h1:9092,h2:9093' -> ['kafka://h1:9092', 'kafka://h2:9093'] for Faust."""
    return [f"kafka://{hp.strip()}" for hp in bootstrap.split(",") if hp.strip()]


#: RocksDB per table partition. Faust's defaults (64 MiB memtables, up to three, and a
#: 2 GiB block cache) are sized for reads; the worker reads a partition's states once,
#: when it is assigned, and overwrites every link's state at each checkpoint. Under
#: ``linkcast soak`` (10,000 links over 4 partitions, about 10 MB/s of states) the
#: worker's RSS was about 180 MiB higher with RocksDB than with ``memory://``, and its
#: CPU 86 % against 92-97 %. Its other reads (as far as the code shows, the lookups
#: of links it has not seen, mostly absent) still filled the block caches: by about
#: 3.6 MiB a minute in two soaks (12 -> 30 MiB from 300 to 600 s), which the memory
#: test judged as growth, with Faust's bloom filter of 3 bits a key; by about 1.6 MiB a
#: minute with 10 bits (12 KB for 10,000 links). So the caches are small too: 4 MiB a
#: partition (15 of their 16 MiB held from 480 s on in that soak).
ROCKSDB_OPTIONS = {
    "write_buffer_size": 16 << 20,
    "max_write_buffer_number": 2,
    "block_cache_size": 4 << 20,
    "bloom_filter_size": 10,
}


class _App(faust.App):
    """A Faust app that runs ``before_stop`` first when it stops, while its consumer,
    tables and producer still work: Faust's own ``on_stop`` stops the tables first thing,
    and sends no partitions-revoked signal."""

    before_stop: Callable[[], Awaitable[None]] | None = None

    async def on_stop(self) -> None:
        if self.before_stop is not None:
            await self.before_stop()
        await super().on_stop()


def create_app(settings: StreamSettings) -> faust.App:
    """Build the worker's Faust app from settings (and from nothing else)."""
    topics = Topics.from_settings(settings)
    # Faust names its RocksDB files by table and partition only: one folder per app id,
    # so workers of two topic prefixes never read each other's state. Faust makes the
    # last folder itself, not its parents.
    datadir = settings.data_dir / settings.app_id
    exactly_once = settings.processing_guarantee == "exactly_once"
    if exactly_once:
        ask_broker_for_highwaters()
    if exactly_once and settings.store == "rocksdb://":
        discard_local_state(datadir)
    datadir.parent.mkdir(parents=True, exist_ok=True)
    partitioner = KeyPartitioner()
    app = _App(
        settings.app_id,
        broker=broker_urls(settings.kafka_bootstrap),
        store=settings.store,
        datadir=str(datadir),
        processing_guarantee=settings.processing_guarantee,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        consumer_auto_offset_reset="earliest",
        # The agent holds records until their state is stored (streams.acks); on a
        # rebalance those are delivered again, so Faust must not wait for them.
        stream_wait_empty=False,
        broker_session_timeout=settings.session_timeout_s,
        # One output message per record: with the 16 KiB default a batch of ~60
        # classifications waits a broker round trip (measured: 872 records/s).
        producer_max_batch_size=1 << 20,
        producer_linger=0.005,
        producer_partitioner=partitioner,  # Kafka's, remembering each key's hash
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        # exactly_once: the worker commits at its checkpoints (streams.transactions)
        broker_commit_interval=NEVER_S if exactly_once else None,  # None: Faust's default
        broker_commit_every=1 << 62 if exactly_once else None,
        web_enabled=True,
        web_host=settings.worker_host,
        web_bind=settings.worker_host,
        web_port=settings.worker_port,
        autodiscover=False,
        # Faust would otherwise read unprefixed variables such as BROKER_URL and WEB_PORT,
        # which Kubernetes and other tools set for their own purposes.
        env={},
    )

    def raw(*names: str) -> faust.TopicT:
        """A topic of raw bytes: linkcast decodes and validates its records itself."""
        return app.topic(*names, key_serializer="raw", value_serializer="raw")

    # direct: the agent reads the ticks only, and Faust assigns their partitions (and the
    # table's); a plain consumer reads the flows partitions of the same numbers.
    direct = settings.reads_flows_directly
    inputs = raw(topics.ticks) if direct else raw(topics.flows, topics.ticks)
    # the topic whose assigned partitions are the flows partitions this worker owns
    owned_topic = topics.ticks if direct else topics.flows
    reader = (
        FlowsReader(
            settings.kafka_bootstrap,
            topics.flows,
            flows_group(settings.app_id),
            client_id=f"{settings.app_id}-flows",
        )
        if direct
        else None
    )
    commits = Commits()
    # JSON keys; the values are JSON already (the processor encodes each snapshot once,
    # which the changelog and RocksDB then take as they are: raw bytes)
    table = app.Table(
        "links",
        partitions=settings.partitions,
        value_type=bytes,
        options=dict(ROCKSDB_OPTIONS) if settings.store == "rocksdb://" else None,
    )
    transactions = (
        Transactions(app, topics.flows, table.changelog_topic.get_topic_name())
        if exactly_once
        else None
    )
    # exactly_once: the processor reads the committed changelog, which the worker reads
    # itself at each assignment (streams.committed); writes go through the table
    committed = (
        CommittedState(table, settings.kafka_bootstrap, table.changelog_topic.get_topic_name())
        if exactly_once
        else None
    )
    state: MutableMapping[str, Any] = table if committed is None else committed
    # at_least_once: states to the table's store and changelog in batches, not key by key
    changelog = ChangelogWriter(table) if transactions is None else None
    processor = LinkProcessor(
        BinConfig.of(settings.bin_s, settings.lateness_s, settings.window_bins),
        state,
        source_topic=topics.flows,
        idle_close_after_s=settings.idle_close_after_s,
        expire_after_s=settings.link_expire_after_s,
        tick_gap_s=max(5.0, 5 * settings.tick_interval_s),
        classifier=_current(settings, "classifier") if settings.classify else None,
        emit_features=settings.classify_emit_features,
        forecaster=_current(settings, "forecaster") if settings.forecast else None,
        alerting=AlertConfig(
            settings.alert_attack_share,
            settings.alert_bins,
            load_capacities(settings.link_capacities_file),
        ),
    )

    def model_in_use(kind: str) -> str | None:
        model = processor.classifier if kind == "classifier" else processor.forecaster
        return None if model is None else model.version

    def use_model(kind: str, loaded: Any) -> None:
        # Between two messages: the agent is not running while this runs.
        previous = model_in_use(kind)
        if kind == "classifier":
            processor.classifier = loaded
        else:  # a model without the horizons asked for is refused; the old one stays
            processor.forecaster = select_horizons(
                loaded, settings.forecast_horizons_s, settings.bin_s
            )
        metrics.set_model(kind, loaded.version, previous, loaded.metrics)

    follower = ModelFollower(
        settings.kafka_bootstrap, topics.models, settings.models_dir, model_in_use, use_model
    )

    @app.task
    async def follow_models() -> None:
        await follower.run()

    async def publish(out: Outputs) -> None:
        """Hand the outputs to the producer now (the state they came from is stored after)."""
        if transactions is None:
            await send_now(out)
        else:
            await send_in_transactions(out, transactions)
        for _, value in out.alerts:
            alert = json.loads(value)
            metrics.ALERTS.labels(reason=alert["reason"], state=alert["state"]).inc()
        if out.forecasts:
            metrics.FORECASTS.inc(len(out.forecasts))
        # a metric's labelled child looked up once per drain, not once per value
        stage = metrics.STAGE_LATENCY.labels(stage="record_to_bin_close")
        metrics.observe_all(stage, out.bin_latencies_s)
        stage = metrics.STAGE_LATENCY.labels(stage="bin_close_to_forecast")
        metrics.observe_all(stage, out.forecast_latencies_s)
        for model, seconds in out.inference_s:
            metrics.INFERENCE.labels(model=model).observe(seconds)
        if out.forecast_failures:
            metrics.FORECAST_FAILURES.inc(out.forecast_failures)
        by_horizon: dict[float, list[Score]] = {}
        for score in out.scores:
            by_horizon.setdefault(score.horizon_s, []).append(score)
        for horizon_s, scores in by_horizon.items():
            horizon = f"{horizon_s:g}"
            metrics.FORECASTS_SCORED.labels(horizon_s=horizon).inc(len(scores))
            metrics.observe_all(
                metrics.FORECAST_RELATIVE_ERROR.labels(horizon_s=horizon),
                [score.abs_error_bps / max(score.actual_bps, 1000.0) for score in scores],
            )
            errors = sum(score.abs_error_bps for score in scores)
            metrics.FORECAST_ABS_ERROR.labels(horizon_s=horizon).inc(errors)
            actual = sum(score.actual_bps for score in scores)
            metrics.FORECAST_ACTUAL.labels(horizon_s=horizon).inc(actual)
            inside = sum(1 for score in scores if score.inside)
            if inside:
                metrics.FORECASTS_INSIDE_INTERVAL.labels(horizon_s=horizon).inc(inside)
        for _, _, reason in out.deadletters:
            metrics.RECORDS_REJECTED.labels(reason=reason.value).inc()
        if out.bins_closed:
            metrics.BINS_CLOSED.inc(out.bins_closed)
        if out.duplicates:
            metrics.RECORDS_DUPLICATE.inc(out.duplicates)

    def keyed(out: Outputs) -> tuple[tuple[str, Sequence[tuple[bytes, bytes | None]]], ...]:
        """The outputs keyed by link, per topic."""
        return (
            (topics.classifications, out.classifications),
            (topics.windows, out.windows),
            (topics.forecasts, out.forecasts),
            (topics.alerts, out.alerts),
            (topics.link_state, out.link_states),
        )

    async def send_now(out: Outputs) -> None:
        """at_least_once: each topic's messages straight to aiokafka's producer, a batch per
        partition (streams.outputs), past Faust's per-message bookkeeping (its topic sends
        took about 16 % of the worker's time in a py-spy profile of linkcast soak). The
        worker acknowledges records itself, only once what they made is delivered."""
        producer = app.producer._ensure_producer()  # type: ignore[attr-defined]  # Faust's has no batches
        for topic, messages in keyed(out):
            if messages:
                await send_batched(producer, partitioner, topic, messages)
        for dead_key, dead_value, _ in out.deadletters:
            await app.producer.send(topics.deadletter, dead_key, dead_value, None, None, None)

    async def send_in_transactions(out: Outputs, tx: Transactions) -> None:
        """exactly_once: each message in the transaction of the flows partition whose
        records made it (a link's partition; a dead letter names its own)."""

        def source(key: bytes) -> int:
            name = key.decode()
            partition = processor.partition_of(name)
            if partition is None:
                partition = out.expired[name]  # forgotten at this drain: a tombstone
            return partition

        for topic, messages in keyed(out):
            for key, value in messages:
                await tx.send(topic, key, value, source(key))
        for dead_key, dead_value, _ in out.deadletters:
            await tx.send(
                topics.deadletter, dead_key, dead_value, json.loads(dead_value)["partition"]
            )

    acks = Acknowledger(processor, every_s=settings.checkpoint_interval_s)
    running: dict[str, Any] = {}  # the agent's stream, for the drains of the timer
    draining = asyncio.Lock()

    @app.agent(inputs, name="links")
    async def process(stream: Any) -> None:
        # Acknowledgements are linkcast's (see Acknowledger): a record is acknowledged,
        # and so committed, only once its link's state holding it is stored.
        stream = running["stream"] = stream.noack()
        async for event in stream.events():
            message = event.message
            # Partitions revoked while this awaits (the broker, the committed state): the
            # processor forgot them, and this event is Kafka's to deliver again.
            generation = processor.generation
            unloaded = committed is not None and not committed.loaded(message.partition)
            if unloaded and not await load_committed(message.partition):
                continue
            now_s = time.time()
            if message.topic == topics.ticks:
                await stream.ack(event)  # a tick carries no data
                last = processor.last_tick_s(message.partition) or 0.0
                if _tick_is_stale(message.value, now_s, last, settings.tick_interval_s):
                    continue
                acks.seen(event)
                if reader is None:
                    caught_up = await flows_caught_up(message.partition, now_s)
                else:
                    caught_up = await direct_caught_up(message.partition)
                if processor.generation != generation:
                    continue
                processor.on_tick(message.partition, now_s, caught_up=caught_up)
            else:
                quiet_ticks.pop(message.partition, None)
                if not await in_sequence(message.partition, message.offset, now_s, generation):
                    continue
                metrics.RECORDS_IN.inc()
                acks.hold(event)
                processor.on_flow(
                    message.key,
                    message.value,
                    partition=message.partition,
                    offset=message.offset,
                    timestamp_ms=round(message.timestamp * 1000) if message.timestamp else None,
                    now_s=now_s,
                )
            if processor.waiting >= DRAIN_EVERY:
                await drain(now_s)

    async def load_committed(partition: int) -> bool:
        """exactly_once: load the committed state of ``partition`` and of every other
        partition assigned and not loaded yet; False if ``partition`` is not assigned (any
        more). The agent waits meanwhile: it cannot count a record without its link's state."""
        assert committed is not None
        while True:
            owned = owned_partitions()
            if partition not in owned:
                return False
            try:
                return await committed.load(owned)
            except Exception as exc:  # Kafka away: BrokerWatch says so; try again
                log.warning(
                    "exactly_once: could not read the committed state of flows partitions "
                    "%s: %r; trying again",
                    sorted(owned),
                    exc,
                )
                await asyncio.sleep(1.0)

    @app.task
    async def read_flows() -> None:
        """direct: hand the flows records of the partitions read to the processor, in
        batches, and drain as the agent does."""
        if reader is None:
            return
        await reader.start()
        try:
            while True:
                if not reader.partitions:
                    await asyncio.sleep(0.05)
                    continue
                # What Faust's conductor does before each message: wait while the
                # producer's buffer (Faust's own sends: dead letters, ticks) is over its
                # size. The outputs and the changelog go to aiokafka's producer in
                # batches, and a partition's next batch waits for its last one to leave,
                # so a worker behind its input does not pile up writes in memory.
                await app.producer.buffer.wait_until_ebb()
                generation = reader.generation
                try:
                    records = await reader.batch(timeout_ms=100, max_records=DRAIN_EVERY)
                except Exception as exc:  # Kafka away: BrokerWatch says so
                    log.warning("reading the flows topic failed: %r; trying again", exc)
                    await asyncio.sleep(1.0)
                    continue
                if generation != reader.generation:
                    # The partitions changed while it waited: the batch may hold records of
                    # the new assignment, past which the consumer has moved. Drop it and put
                    # every partition back at its next record to handle.
                    reader.seek({p: processor.expected_offset(p) or 0 for p in reader.partitions})
                    continue
                now_s = time.time()
                if records:
                    metrics.RECORDS_IN.inc(len(records))
                # the last record of each partition stands for those before it
                last = {record.partition: record for record in records}
                for record in last.values():
                    acks.hold(Held(record), current=False)
                processor.on_flows(
                    [(r.key, r.value, r.partition, r.offset, r.timestamp) for r in records], now_s
                )
                if processor.waiting >= DRAIN_EVERY:
                    await drain(now_s)
        finally:
            await reader.stop()

    async def direct_caught_up(partition: int) -> bool:
        """direct: whether the partition's records up to its end (as the broker or the
        reader's last fetch said) are handled; the first tick of a partition starts its
        reading."""
        assert reader is not None
        if partition not in reader.partitions:
            await start_reading(partition)
            return False
        # the end as last heard, from the broker (timer) or from a fetch, whichever is later
        heard = [
            e for e in (flows_ends.get(partition), reader.highwater(partition)) if e is not None
        ]
        highwater = max(heard) if heard else None
        done = processor.expected_offset(partition)
        if highwater is None or done is None:
            return False
        # past a transaction's marker at the end, which no record has
        done = max(done, await reader.position(partition) or done)
        metrics.CONSUMER_LAG.labels(partition=str(partition)).set(max(0, highwater - done))
        return done >= highwater

    async def start_reading(partition: int) -> None:
        """direct: read ``partition`` from the next offset its stored state does not hold
        (or where its group's commits say, if further on); the others stay where they are."""
        assert reader is not None
        if partition not in owned_partitions():
            return  # a tick left from before a revoke
        generation = reader.generation
        try:
            start = await asyncio.wait_for(reader.where_kafka_starts(partition), KAFKA_CALL_S)
            end = await asyncio.wait_for(reader.end_offset(partition), KAFKA_CALL_S)
        except Exception as exc:  # asked again at the next tick
            log.warning("flows partition %d: could not ask where it starts: %r", partition, exc)
            return
        if reader.generation != generation or partition not in owned_partitions():
            return  # revoked while it asked: the next assignment's first tick starts it
        processor.start_from(partition, start)
        positions = {}
        for p in reader.partitions | {partition}:
            expected = processor.expected_offset(p)
            positions[p] = 0 if expected is None else expected
        log.info("flows partition %d: reading from offset %d", partition, positions[partition])
        reader.read(positions)
        # the lag now; the ticks keep it up to date from then on
        lag = max(0, end - positions[partition])
        metrics.CONSUMER_LAG.labels(partition=str(partition)).set(lag)

    def owned_partitions() -> set[int]:
        """The flows partitions Faust has assigned this worker now (actives only)."""
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == owned_topic}

    rewinding: dict[int, tuple[float, int]] = {}  # partition -> (last seek time, seeks)
    # partition -> ticks handled, records waiting, since its last flows message (handled or
    # skipped as handled already)
    quiet_ticks: dict[int, int] = {}

    async def in_sequence(partition: int, offset: int, now_s: float, generation: int) -> bool:
        """Whether a flows message is the next of its partition; else rewind or skip it.

        Right after an assignment Faust has been seen to skip records (and to
        redeliver some): see faust-streaming issues 216 and 221. A message past
        the next expected offset makes the worker rewind (``rewind``); messages
        before it were handled already and are skipped. The rewind is repeated
        every second until the expected offset arrives; after REWIND_TRIES the
        offsets between are taken not to exist (a transactional producer's
        markers) and the stream goes on from the message.
        """
        if processor.generation != generation:
            return False  # revoked while the agent awaited: delivered again
        if not processor.start_known(partition):
            start = await kafka_start(partition)
            if processor.generation != generation:
                return False
            processor.start_from(partition, start)
        expected = processor.expected_offset(partition)
        if expected is None or offset == expected:
            rewinding.pop(partition, None)
            return True
        if offset < expected:
            return False  # handled already
        last_s, seeks = rewinding.get(partition, (0.0, 0))
        if seeks >= REWIND_TRIES:
            log.error("flows partition %d has no offsets %d to %d", partition, expected, offset)
            processor.skip_to(partition, offset)
            rewinding.pop(partition)
            return True
        if now_s - last_s >= 1.0:
            log.warning(
                "flows partition %d: got offset %d, expected %d; reading again",
                partition,
                offset,
                expected,
            )
            metrics.REWINDS.inc()
            rewinding[partition] = (now_s, seeks + 1)
            await rewind()
        return False

    async def kafka_start(partition: int) -> int | None:
        """Where Kafka starts a flows partition for this worker's group: the committed
        offset, or the first offset (retention may have removed what was committed)."""
        tp = TP(topics.flows, partition)
        try:
            committed = await committed_offsets(
                settings.kafka_bootstrap, app.conf.id, topics.flows, [partition]
            )
            first = (await app.consumer.earliest_offsets(tp)).get(tp)
        except Exception as exc:  # the stored marker alone then decides, as before
            log.warning("flows partition %d: could not ask where it starts: %r", partition, exc)
            return None
        known = [o for o in (committed.get(partition), first) if o is not None]
        return max(known) if known else None

    async def rewind() -> None:
        """Read every partition again from its committed offset, as Faust does after a
        rebalance: flow stopped, the fetcher idle, buffered messages dropped, then the
        seek. Messages below a partition's expected offset are then skipped as handled."""
        consumer = app.consumer
        consumer.stop_flow()
        app.flow_control.suspend()
        try:
            # not in ConsumerT, the type Faust declares for app.consumer
            await asyncio.wait_for(consumer.wait_for_stopped_flow(), timeout=10)  # type: ignore[attr-defined]
        except TimeoutError:
            log.warning("the fetcher did not stop in 10 s; seeking anyway")
        app.flow_control.clear()
        await consumer.perform_seek()
        consumer.resume_flow()
        app.flow_control.resume()

    @app.timer(interval=DRAIN_IDLE_S)
    async def drain_soon() -> None:
        """Drain what a quiet stream has left, at most DRAIN_IDLE_S after it came."""
        stream = running.get("stream")
        if stream is not None and processor.waiting:
            await drain(time.time())

    async def drain(now_s: float) -> None:
        """Publish what the messages since the last drain made; at a checkpoint, also store
        the states of the links that changed and acknowledge what is now safe."""
        async with draining:
            await _drain(now_s)

    async def _drain(now_s: float, checkpoint: bool = False) -> None:
        stream = running["stream"]  # the agent's: table writes go through its events
        checkpoint = checkpoint or acks.checkpoint_due(now_s)
        if checkpoint and transactions is not None:
            acks.persist_all()  # a transaction holds whole links: outputs and their state
        elif checkpoint:
            acks.persist_old(now_s)
        # states are stored at checkpoints: a link closing bins at every drain is written
        # once a checkpoint, not at each drain
        out = processor.drain(
            now_s, mark_all=checkpoint and transactions is not None, store=checkpoint
        )
        # The agent (and the reader) may handle more messages while this drain awaits:
        # they are not in it, so what is safe to acknowledge is what is safe now.
        safe = acks.safe_offsets() if checkpoint else None
        await publish(out)
        if changelog is None:
            for partition, changes in out.states_by_partition().items():
                with acks.writing_for(stream, partition):
                    write_states(state, changes)
        else:
            await changelog.write(
                app.producer._ensure_producer(),  # type: ignore[attr-defined]
                out.states_by_partition(),
                lambda partition: acks.writing_for(stream, partition),
            )
        links_stored = out.links_stored
        if links_stored:
            metrics.STATES_STORED.inc(links_stored)
        if checkpoint and transactions is not None:
            await transactions.buffer_handed_over()  # the changelog writes are in
            await acks.acknowledge(stream, now_s, safe)
            await transactions.commit()
        elif checkpoint and reader is not None:
            await delivered(app)
            await acks.acknowledge(commits, now_s, safe)
            try:
                await asyncio.wait_for(reader.commit(commits.take()), KAFKA_CALL_S)
            except Exception as exc:  # the next checkpoint commits further on
                log.warning("committing the flows offsets failed: %r", exc)
        elif checkpoint:
            await delivered(app)
            await acks.acknowledge(stream, now_s, safe)
        metrics.LINKS_TRACKED.set(processor.links_tracked)

    # partition -> the flows partition's end offset, as the broker last said. Asked by a
    # timer, never by the agent: the question goes through Faust's consumer thread, behind
    # its fetches, and took 0.2 to 2.5 s a tick under load; asked on every tick it held
    # the agent idle with its queue full and Faust stopped fetching flows (the soak at
    # 10,000 links: records in flat from 40 s on, lag climbing, the CPU idle).
    flows_ends: dict[int, int] = {}

    @app.timer(interval=settings.tick_interval_s)
    async def ask_flows_ends() -> None:
        if reader is not None:
            # The reader's fetches tell the end only as often as it fetches, which a
            # worker behind its input does seldom (8 MiB a partition): ask the broker.
            try:
                asked = await asyncio.wait_for(
                    reader.end_offsets(sorted(reader.partitions)), KAFKA_CALL_S
                )
            except Exception as exc:  # Kafka away: BrokerWatch says so
                log.debug("asking the flows partitions' end offsets failed: %r", exc)
                return
            flows_ends.update(asked)
            return
        tps = [tp for tp in app.assignor.assigned_actives() if tp.topic == topics.flows]
        if not tps:  # none under direct: Faust assigns the ticks only
            return
        try:
            ends = await app.consumer.highwaters(*tps)
        except Exception as exc:  # Kafka away: BrokerWatch says so; ticks wait meanwhile
            log.debug("asking the flows partitions' end offsets failed: %r", exc)
            return
        flows_ends.update({tp.partition: end for tp, end in ends.items() if end is not None})

    async def flows_caught_up(partition: int, now_s: float) -> bool:
        """True when no flows message of ``partition`` is waiting to be processed, as far
        as the broker's last word on its end says (and the partition's consumer lag, for
        the metric). Before that word, False: a backlog may wait."""
        tp = TP(topics.flows, partition)
        highwater = flows_ends.get(partition)
        if highwater is None:
            return False
        done = processor.expected_offset(partition)
        if done is None:  # nothing handled or stored: compare the fetch position
            position = await app.consumer.position(tp)
            done = highwater if position is None else position
        metrics.CONSUMER_LAG.labels(partition=str(partition)).set(max(0, highwater - done))
        if done >= highwater:
            quiet_ticks.pop(partition, None)
            return True
        # Ticks and flows share the agent's queue in the order they were fetched, so a
        # slow agent (a long drain, a backlog skipped after a restart) still gets flows
        # messages between its ticks. Only ticks with none between mean that Faust
        # skipped the tail of the partition, which nothing later shows to in_sequence.
        quiet = quiet_ticks[partition] = quiet_ticks.get(partition, 0) + 1
        if quiet * settings.tick_interval_s >= STUCK_S:
            log.warning(
                "flows partition %d: offsets from %d wait but none came in %d ticks; reading again",
                partition,
                done,
                quiet,
            )
            metrics.REWINDS.inc()
            quiet_ticks.pop(partition, None)
            await rewind()
        return False

    @app.timer(interval=settings.tick_interval_s)
    async def send_ticks() -> None:
        body = json.dumps({"wall_s": time.time()}).encode()
        for partition in owned_partitions():
            # never in a transaction: it would wait for a commit, and an idle partition
            # makes none
            await app.producer.send(topics.ticks, None, body, partition, None, None)

    async def stop_checkpoint() -> None:
        """The last checkpoint of a stopping worker (SIGTERM): every link's state stored
        and what it holds committed, so that the next owner does none of it again.

        The drain lock is taken for good: a drain after this one (the reader's, the
        agent's) would write to tables Faust is stopping, or commit past states a
        checkpoint cut short left unstored. Both the wait for the lock and the
        checkpoint are bounded by ``broker_timeout_s``; past it the worker stops
        without, and the next owner redoes what was not committed.
        """

        async def checkpoint() -> None:
            await draining.acquire()  # never released
            stream = running.get("stream")
            if stream is None or (reader is not None and not reader.partitions):
                return  # nothing read yet
            acks.persist_all()
            await _drain(time.time(), checkpoint=True)

        try:
            await asyncio.wait_for(checkpoint(), settings.broker_timeout_s)
        except TimeoutError:
            log.warning(
                "the last checkpoint did not finish in %g s; stopping without it",
                settings.broker_timeout_s,
            )
        except Exception as exc:  # stopping all the same; the next owner redoes it
            log.warning("the last checkpoint failed: %r; stopping without it", exc)

    app.before_stop = stop_checkpoint

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Under the drain lock: a drain that awaits the producer must not then store
        # states of partitions forgotten meanwhile (no event left to write them with).
        async with draining:
            stream = running.get("stream")
            if transactions is not None and stream is not None:
                # Commit what this worker did, so that neither the next owner nor this
                # one (its transactions stay open for the partitions it keeps) redoes it.
                await _drain(time.time(), checkpoint=True)
            elif reader is not None and stream is not None and reader.partitions:
                try:  # the next owner starts where this one stopped
                    await _drain(time.time(), checkpoint=True)
                except Exception as exc:  # it reads again what was not committed
                    log.warning("committing the flows offsets at a revoke failed: %r", exc)
            if reader is not None:
                reader.stop_reading()
            processor.forget_partitions()
            if changelog is not None:
                changelog.forget()
            if committed is not None:
                committed.forget()
            flows_ends.clear()
            acks.forget()
            rewinding.clear()
            quiet_ticks.clear()

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    return app


def _current(settings: StreamSettings, kind: str) -> Any:
    """The current model of ``kind`` in the registry (or the packaged one)."""
    from models.registry import Registry
    from models.runtime import load_classifier, load_forecaster

    registry = Registry(settings.models_dir)
    if kind == "classifier":
        model: Any = load_classifier(registry.current("classifier"))
    else:
        model = load_forecaster(registry.current("forecaster"))
        model = select_horizons(model, settings.forecast_horizons_s, settings.bin_s)
    log.info("using %s %s", kind, model.version)
    metrics.set_model(kind, model.version, None, model.metrics)
    return model


STALE_TICK_S = 60.0
KAFKA_CALL_S = 10.0  # aiokafka retries a group's offsets calls without end: at most this
REWIND_TRIES = 10
STUCK_S = 5.0  # ticks over this long with records waiting and none delivered: read it again


def _tick_is_stale(
    value: bytes | None, now_s: float, last_handled_s: float, interval_s: float
) -> bool:
    """Whether a tick can be skipped because another does its work.

    Ticks pile up while the worker is busy or down. One per partition per half
    interval is enough, and ticks older than a minute (left from before a
    restart) are dropped outright. A slow worker still gets its ticks.
    """
    try:
        sent = float(json.loads(value or b"{}")["wall_s"])
    except (ValueError, KeyError, TypeError):
        return True
    return now_s - sent > STALE_TICK_S or now_s - last_handled_s < interval_s / 2

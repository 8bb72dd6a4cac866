"""`linkcast bench stream`: one worker on one core against a plain aiokafka consumer.

The run:

1. **Fill.** A throwaway prefix ``bench-<random>`` gets its topics, and its
   flows topic gets ``--records`` flow records over ``--links`` links. The
   records are the simulator's (so the classifier sees real-looking flows),
   re-keyed round-robin over the links and re-timed so that every link sends
   ``--link-rate`` records per second of event time: link ``k`` of record
   ``i`` is ``i mod L`` and its event time is ``t0 + (i div L) / rate``.
   Filling is not timed.
2. **Baseline.** A plain aiokafka consumer, pinned to the measured CPU, reads
   the whole flows topic and decodes every value with ``json.loads``: what any
   consumer must do, with nothing else. Timed from its first message to its
   last.
3. **Worker.** ``linkcast worker`` with the production settings (RocksDB
   state, classification and forecasts on, the packaged models), pinned to
   the same CPU, started after the fill so it meets a full topic. Its
   ``/metrics`` page is polled every ``POLL_S``: the rate is the records
   processed between the first poll that saw any and the first that saw them
   all, over that time (start-up, joining the group and loading models are
   not timed). Then it waits for the last bin to close (the idle timer closes
   each link's last bins once records stop, so that time includes
   ``LINKCAST_IDLE_CLOSE_AFTER_S``).
4. **Latency.** Bin close to forecast published: each forecast's Kafka
   timestamp (set when the worker hands it to its producer) minus the
   processing time its bin closed (``emitted_at_s`` of the window record of
   the bin the forecast was made at).

``ratio`` is the worker's records/s over the plain consumer's. Topics are
deleted after the run unless ``--keep-topics``.
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from deploy.processes import stop_process
from producers.simulator import SimulationConfig, simulate
from streams.admin import delete_topics, ensure_topics, worker_topics
from streams.exceptions import LinkcastError
from streams.settings import StreamSettings
from streams.topics import Topics, topic_specs

POLL_S = 0.25
POOL_RECORDS = 20_000  # distinct simulated flows the records are drawn from


class StreamBenchError(LinkcastError):
    """The stream benchmark could not measure what it promises."""


@dataclass(frozen=True)
class Plan:
    records: int
    links: int
    link_rate: float  # records per link per second of event time
    partitions: int
    cpu: int
    timeout_s: float
    flows_reader: str = "faust"

    @property
    def span_s(self) -> float:
        """Event time the records cover."""
        return (self.records // self.links) / self.link_rate


def register(benches: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add `stream` to the `linkcast bench` group."""
    from producers.cli import positive_float, positive_int

    p = benches.add_parser(
        "stream",
        help="one worker on one core, in records/s, beside a plain aiokafka consumer",
        description="Fill a topic with --records flow records over --links links, then time one "
        "'linkcast worker' pinned to one CPU processing it, and in the same run a plain aiokafka "
        "consumer that only reads and JSON-decodes it. Prints records/s, the ratio and the "
        "p50/p99 of bin close to forecast published; the last line is the JSON result.",
    )
    p.add_argument("--records", type=positive_int, default=2_000_000)
    p.add_argument("--links", type=positive_int, default=1_000)
    p.add_argument(
        "--link-rate",
        type=positive_float,
        default=10.0,
        help="records per link per second of event time (default 10)",
    )
    p.add_argument("--partitions", type=positive_int, default=4)
    p.add_argument(
        "--cpu", type=int, default=None, help="CPU to pin the measured process to (default: last)"
    )
    p.add_argument("--timeout", type=positive_float, default=1800.0, help="seconds per phase")
    p.add_argument(
        "--flows-reader",
        choices=("faust", "direct"),
        default=None,
        help="what reads the flows topic in the worker (LINKCAST_FLOWS_READER; default: "
        "the setting's default)",
    )
    p.add_argument("--keep-topics", action="store_true", help="keep the bench topics")
    p.set_defaults(func=run_stream_bench)


def run_stream_bench(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Run the bench; return its result line, its full record and its result file's name."""
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[-1] if args.cpu is None else args.cpu
    if cpu not in cpus:
        raise StreamBenchError(f"--cpu {cpu} is not one of this process's CPUs {cpus}")
    if args.records < args.links:
        raise StreamBenchError(f"--records ({args.records}) must be at least --links")
    reader = args.flows_reader or ("direct" if StreamSettings().reads_flows_directly else "faust")
    plan = Plan(
        args.records, args.links, args.link_rate, args.partitions, cpu, args.timeout, reader
    )
    settings = StreamSettings(
        topic_prefix=f"bench-{secrets.token_hex(4)}", partitions=plan.partitions
    )
    topics = Topics.from_settings(settings)
    print(
        f"bench stream: {plan.records:,} records over {plan.links:,} links, "
        f"{plan.span_s:g} s of event time, {plan.partitions} partitions, CPU {cpu}, "
        f"flows read by {plan.flows_reader}; "
        f"topic prefix {settings.topic_prefix}",
        flush=True,
    )
    try:
        asyncio.run(ensure_topics(settings.kafka_bootstrap, topic_specs(settings)))
        started = time.perf_counter()
        expected_bins = asyncio.run(fill(settings.kafka_bootstrap, topics.flows, plan))
        print(f"filled in {time.perf_counter() - started:.1f} s", flush=True)
        with pinned({cpu}):
            baseline = asyncio.run(plain_consumer(settings.kafka_bootstrap, topics.flows, plan))
        print(f"plain consumer: {baseline['records_per_s']:,.0f} records/s", flush=True)
        with tempfile.TemporaryDirectory(prefix="linkcast-bench-") as tmp:
            worker = run_worker(settings, plan, expected_bins, Path(tmp))
        latency = asyncio.run(forecast_latency(settings.kafka_bootstrap, topics, plan.partitions))
    finally:
        if not args.keep_topics:
            names = [s.name for s in topic_specs(settings)]
            try:
                names += asyncio.run(worker_topics(settings.kafka_bootstrap, settings.app_id))
            except Exception as exc:  # the bench's own topics are deleted all the same
                print(f"could not list the worker's topics to delete them: {exc!r}")
            asyncio.run(delete_topics(settings.kafka_bootstrap, names))
    result = {
        "bench": "stream",
        "value": worker["records_per_s"],
        "unit": "records/s",
        "baseline": baseline["records_per_s"],
        "ratio": worker["records_per_s"] / baseline["records_per_s"],
        "records": plan.records,
        "links": plan.links,
        "flows_reader": plan.flows_reader,
        "seconds_to_last_bin": worker["seconds_to_last_bin"],
        "forecast_latency_p50_s": latency["p50_s"],
        "forecast_latency_p99_s": latency["p99_s"],
        "forecasts": latency["forecasts"],
        "topic_prefix": settings.topic_prefix,
    }
    print(f"worker: {worker['records_per_s']:,.0f} records/s, ratio {result['ratio']:.3f}")
    print(
        f"last bin closed {worker['seconds_to_last_bin']:.1f} s after the first record "
        f"({worker['bins_closed']:,} bins; {worker['states_stored']:,} link states stored)"
    )
    if latency["forecasts"]:
        print(
            f"bin close -> forecast published over {latency['forecasts']:,} forecasts: "
            f"p50 {latency['p50_s'] * 1000:.1f} ms, p99 {latency['p99_s'] * 1000:.1f} ms"
        )
    else:
        print("no forecasts: no link had a full history (raise --records or lower --links)")
    full = {
        **result,
        "plan": asdict(plan),
        "baseline_run": baseline,
        "worker_run": worker,
        "latency": latency,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    return result, full, "stream.json"


# ---- fill ------------------------------------------------------------------


def record_pool(size: int) -> list[dict[str, Any]]:
    """``size`` simulated flow records as dicts, their times relative to their end."""
    config = SimulationConfig(links=8, duration_s=3600, rate=200.0, seed=7)
    pool = []
    for record in itertools.islice(simulate(config), size):
        fields = record.model_dump(mode="json", exclude_none=True)
        if "start" in fields:
            fields["start"] = fields["start"] - fields["ts"]  # duration, made negative
        pool.append(fields)
    return pool


async def fill(bootstrap: str, topic: str, plan: Plan) -> int:
    """Publish the plan's records; return how many bins their links will close."""
    pool = record_pool(min(POOL_RECORDS, plan.records))
    t0 = float(int(time.time() - plan.span_s - 3600))
    width = len(str(plan.links - 1))
    names = [f"link-{k:0{width}d}" for k in range(plan.links)]
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20, acks=1
    )
    await producer.start()
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    try:
        pending = []
        for i in range(plan.records):
            k = i % plan.links
            ts = t0 + (i // plan.links) / plan.link_rate
            fields = dict(pool[i % len(pool)])
            fields["link"] = names[k]
            fields["ts"] = ts
            if "start" in fields:
                fields["start"] = max(0.0, ts + fields["start"])
            first.setdefault(k, ts)
            last[k] = ts
            pending.append(
                await producer.send(
                    topic,
                    json.dumps(fields).encode(),
                    key=names[k].encode(),
                    timestamp_ms=int(ts * 1000),
                )
            )
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    bin_s = StreamSettings().bin_s
    return sum(int(last[k] // bin_s) - int(first[k] // bin_s) + 1 for k in first)


# ---- baseline --------------------------------------------------------------


@contextlib.contextmanager
def pinned(cpus: set[int]) -> Iterator[None]:
    """Run this process on ``cpus`` only, for the ``with`` block."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


async def plain_consumer(bootstrap: str, topic: str, plan: Plan) -> dict[str, Any]:
    """Read and ``json.loads`` every record of ``topic``: the reference rate."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(plan.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        seen = 0
        started = None
        deadline = time.monotonic() + plan.timeout_s
        while seen < plan.records:
            if time.monotonic() > deadline:
                raise StreamBenchError(f"the plain consumer read {seen} records in time")
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for messages in batches.values():
                if started is None:
                    started = time.perf_counter()
                for message in messages:
                    json.loads(message.value)
                seen += len(messages)
        seconds = time.perf_counter() - (started or time.perf_counter())
    finally:
        await consumer.stop()
    return {"records": seen, "seconds": seconds, "records_per_s": seen / seconds}


# ---- worker ----------------------------------------------------------------


def run_worker(
    settings: StreamSettings, plan: Plan, expected_bins: int, tmp: Path
) -> dict[str, Any]:
    """Time one pinned worker over the filled topic (see the module's docstring)."""
    log = tmp / "worker.log"
    proc, port = start_pinned_worker(
        settings,
        plan.partitions,
        plan.cpu,
        tmp / "state",
        log,
        LINKCAST_FLOWS_READER=plan.flows_reader,
    )
    others = os.sched_getaffinity(0) - {plan.cpu} or {plan.cpu}
    try:
        with pinned(others):
            return _watch(proc, f"http://127.0.0.1:{port}/metrics", plan, expected_bins, log)
    finally:
        stop_process(proc)


def start_pinned_worker(
    settings: StreamSettings,
    partitions: int,
    cpu: int,
    state: Path,
    log: Path,
    **extra: str,
) -> tuple["subprocess.Popen[bytes]", int]:
    """Start `linkcast worker` on ``cpu`` only with the packaged models, logging to ``log``;
    ``extra`` adds LINKCAST_ variables. Returns the process and its web port."""
    port = _free_port()
    env = {
        **os.environ,
        "LINKCAST_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "LINKCAST_TOPIC_PREFIX": settings.topic_prefix,
        "LINKCAST_PARTITIONS": str(partitions),
        "LINKCAST_DATA_DIR": str(state),
        "LINKCAST_MODELS_DIR": str(state.parent / "registry"),  # empty: the packaged models
        "LINKCAST_WORKER_PORT": str(port),
        **extra,
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deploy", "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
        )
    return proc, port


def _watch(
    proc: "subprocess.Popen[bytes]", url: str, plan: Plan, expected_bins: int, log: Path
) -> dict[str, Any]:
    """Poll the worker's counters until every record is in and every bin has closed."""
    deadline = time.monotonic() + plan.timeout_s
    first: tuple[float, float] | None = None  # (time, records) at the first poll with any
    done_s = None
    while True:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise StreamBenchError(f"the worker exited with {proc.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            raise StreamBenchError(
                f"the worker did not finish in {plan.timeout_s:g} s (see {log}); last counts: "
                f"{_counters(url)}"
            )
        now = time.perf_counter()
        counts = _counters(url)
        records, bins = (
            counts.get("linkcast_records_in_total", 0),
            counts.get("linkcast_bins_closed_total", 0),
        )
        if records and first is None:
            first = (now, records)
        if first is not None and done_s is None and records >= plan.records:
            done_s = now
        if done_s is not None and bins >= expected_bins:
            break
        time.sleep(POLL_S)
    assert first is not None
    seconds = done_s - first[0]
    return {
        "records": plan.records,
        "seconds": seconds,
        "records_per_s": (plan.records - first[1]) / seconds,
        "seconds_to_last_bin": now - first[0],
        "bins_closed": bins,
        "expected_bins": expected_bins,
        # link states written to the table and changelog, a cost that grows with the links
        "states_stored": counts.get("linkcast_link_states_stored_total", 0),
    }


def _counters(url: str) -> dict[str, float]:
    """The worker's unlabelled counters, or nothing while its web page is not up yet."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        if line.startswith("linkcast_") and "{" not in line:
            name, _, value = line.partition(" ")
            found[name] = float(value)
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- latency ---------------------------------------------------------------


async def forecast_latency(bootstrap: str, topics: Topics, partitions: int) -> dict[str, Any]:
    """Bin close -> forecast handed to the producer, per forecast, from the topics (each of
    ``partitions`` partitions)."""
    closed_at = {
        (w["link"], w["bin_end_s"]): w["emitted_at_s"]
        for _, w in await _read_all(bootstrap, topics.windows, partitions)
    }
    latencies = sorted(
        max(0.0, timestamp_s - closed_at[(f["link"], f["made_at_s"])])
        for timestamp_s, f in await _read_all(bootstrap, topics.forecasts, partitions)
        if (f["link"], f["made_at_s"]) in closed_at
    )
    if not latencies:
        return {"forecasts": 0, "p50_s": None, "p99_s": None}
    return {
        "forecasts": len(latencies),
        "p50_s": latencies[len(latencies) // 2],
        "p99_s": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "max_s": latencies[-1],
    }


async def _read_all(
    bootstrap: str, topic: str, partitions: int
) -> list[tuple[float, dict[str, Any]]]:
    """Every record of ``topic`` now, as (Kafka timestamp in s, decoded value).

    The partitions are given: aiokafka's ``topics()`` fetches metadata without keeping it,
    so ``partitions_for_topic`` after it answered None, and every run found no forecasts.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        await consumer.seek_to_beginning(*parts)
        out = []
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for messages in batches.values():
                out += [(m.timestamp / 1000, json.loads(m.value)) for m in messages]
        return out
    finally:
        await consumer.stop()

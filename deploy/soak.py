"""`linkcast soak`: one worker under a steady, churning load for minutes; does it hold?

The run:

1. **Broker and topics.** ``LINKCAST_KAFKA_BOOTSTRAP`` if set, else a broker
   already answering at the default address, else the local launcher's (started
   here and stopped at the end). A throwaway prefix ``soak-<random>`` gets its
   topics, deleted at the end.
2. **Worker.** ``linkcast worker`` with the production settings (RocksDB state,
   classification and forecasts on, the packaged models) but
   ``LINKCAST_LINK_EXPIRE_AFTER_S`` = ``--expire-after`` (default 60 s instead
   of an hour, so that the links that go silent leave the state within the
   run), pinned to one CPU; the soak itself runs on the others.
3. **Load.** ``--rate`` records/s, paced every ``STEP_S``, stamped with the
   wall clock as event time. Each goes to a link drawn at random from
   ``--links`` active links; every second ``--churn`` / 60 of them go silent
   for good and as many new ones appear. The records are the simulator's
   flows (as in ``linkcast bench stream``), re-keyed.
4. **Samples** every ``--sample`` s: the worker's resident memory and CPU (from
   ``/proc``), glibc's heap in use (``linkcast_malloc_in_use_bytes``; RSS also
   holds its free heap, Python's own arenas and the libraries), records in, bins closed, links
   tracked, consumer lag (the sum of ``linkcast_consumer_lag_records``), the
   p50/p99 of each stage latency over the interval (from histogram deltas) and
   the machine's load average.
5. **Drain.** After ``--minutes`` the producer stops; the worker has
   ``DRAIN_S`` to process everything sent.

It fails (exit 1) if the worker's memory or its lag keeps growing over the
second half of the run (``deploy.growth``: memory by more than 0.5 % a minute
and 2 % end to end; lag by more than 1 s of input a minute and 5 s of input end
to end), or if it does not catch up in ``DRAIN_S`` once the load stops.
"""

import argparse
import asyncio
import json
import os
import random
import secrets
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from deploy import growth
from deploy.localkafka import LocalCluster
from deploy.processes import stop_process
from deploy.soakreport import report
from deploy.soaksample import Sample, take_sample
from deploy.streambench import pinned, record_pool, start_pinned_worker
from streams.admin import delete_topics, ensure_topics, wait_for_broker
from streams.exceptions import BrokerUnavailableError, LinkcastError
from streams.settings import StreamSettings
from streams.topics import Topics, topic_specs

STEP_S = 0.1  # the producer's pacing step
POOL_RECORDS = 5_000  # distinct simulated flows the records are drawn from
READY_S = 180.0  # for the worker to start, join the group and report every partition
DRAIN_S = 60.0


class SoakError(LinkcastError):
    """The soak could not run as planned."""


@dataclass(frozen=True)
class Plan:
    minutes: float
    links: int
    rate: float  # records/s over all links
    churn: float  # share of the active links replaced per minute
    expire_after_s: float
    sample_s: float
    partitions: int
    cpu: int
    seed: int


def register(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add `soak` to the `linkcast` commands."""
    from producers.cli import positive_float, positive_int

    p = commands.add_parser(
        "soak",
        help="one worker under a steady, churning load; fails if memory or lag keeps growing",
        description="Run one 'linkcast worker' (production settings, links expiring after "
        "--expire-after s) under --rate records/s over --links active links, a --churn share "
        "of them replaced each minute, for --minutes; sample its memory, lag, links and stage "
        "latencies; print them over time, write them as JSON, and exit 1 if memory or lag "
        "keeps growing over the second half or the worker does not catch up at the end.",
    )
    p.add_argument("--minutes", type=positive_float, default=10.0, help="load time (default 10)")
    p.add_argument("--links", type=positive_int, default=10_000, help="active links (default)")
    p.add_argument("--rate", type=positive_float, default=800.0, help="records/s (default 800)")
    p.add_argument(
        "--churn", type=_share, default=0.1, help="share of links replaced a minute (default 0.1)"
    )
    p.add_argument(
        "--expire-after", type=positive_float, default=60.0, help="link expiry, s (default 60)"
    )
    p.add_argument(
        "--sample",
        type=positive_float,
        help="seconds between samples (default: 10, or less so that the judged half holds 10)",
    )
    p.add_argument("--partitions", type=positive_int, default=4)
    p.add_argument("--cpu", type=int, help="CPU to pin the worker to (default: the last)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--home", type=Path, default=Path(".linkcast"), help="local broker's state")
    p.add_argument("--out", type=Path, help="JSON result file (default .linkcast/bench/soak.json)")
    p.set_defaults(func=run_soak)


def _share(text: str) -> float:
    from producers.cli import non_negative_float

    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text!r} is a share of the links: 0 to 1")
    return value


def run_soak(args: argparse.Namespace) -> int:
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[-1] if args.cpu is None else args.cpu
    if cpu not in cpus:
        raise SoakError(f"--cpu {cpu} is not one of this process's CPUs {cpus}")
    seconds = args.minutes * 60
    sample_s = args.sample or min(10.0, seconds / 20)
    if seconds / 2 / sample_s < growth.MIN_JUDGED:
        raise SoakError(
            f"--sample {sample_s:g} s leaves fewer than {growth.MIN_JUDGED} samples in the "
            f"second half of {seconds:g} s; sample more often or run longer"
        )
    plan = Plan(
        args.minutes, args.links, args.rate, args.churn, args.expire_after, sample_s,
        args.partitions, cpu, args.seed,
    )  # fmt: skip
    cluster, started = _broker(args.home)
    try:
        settings = StreamSettings(
            topic_prefix=f"soak-{secrets.token_hex(4)}", partitions=plan.partitions
        )
        print(
            f"soak: {plan.rate:g} records/s over {plan.links:,} active links "
            f"({plan.churn:.0%} replaced a minute, expiry {plan.expire_after_s:g} s) for "
            f"{plan.minutes:g} min, a sample every {sample_s:g} s; worker on CPU {cpu}; "
            f"Kafka {settings.kafka_bootstrap}, prefix {settings.topic_prefix}",
            flush=True,
        )
        asyncio.run(ensure_topics(settings.kafka_bootstrap, topic_specs(settings)))
        try:
            with tempfile.TemporaryDirectory(prefix="linkcast-soak-") as tmp:
                samples, drained_s = _soak(settings, plan, Path(tmp), args.home / "soak")
        finally:
            names = [s.name for s in topic_specs(settings)]
            asyncio.run(delete_topics(settings.kafka_bootstrap, names))
    finally:
        if cluster is not None and started:
            cluster.stop(started)
    return report(plan, samples, drained_s, args.out)


def _broker(home: Path) -> tuple[LocalCluster | None, list[int]]:
    """The cluster to use: (the local one and the nodes started here, if it came to that)."""
    if "LINKCAST_KAFKA_BOOTSTRAP" in os.environ:
        return None, []
    try:
        asyncio.run(wait_for_broker(StreamSettings().kafka_bootstrap, 2.0))
        return None, []
    except BrokerUnavailableError:
        pass
    cluster = LocalCluster(home)
    print("starting the local Kafka broker...", flush=True)
    return cluster, cluster.start()


def _soak(
    settings: StreamSettings, plan: Plan, tmp: Path, logs: Path
) -> tuple[list[Sample], float | None]:
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"worker-{settings.topic_prefix}.log"
    proc, port = start_pinned_worker(
        settings,
        plan.partitions,
        plan.cpu,
        tmp / "state",
        log,
        LINKCAST_LINK_EXPIRE_AFTER_S=str(plan.expire_after_s),
    )
    others = os.sched_getaffinity(0) - {plan.cpu} or {plan.cpu}
    try:
        with pinned(others):
            watch = _Watch(proc, f"http://127.0.0.1:{port}/metrics", log)
            watch.ready(plan.partitions)
            return asyncio.run(_drive(settings, Topics.from_settings(settings), plan, watch))
    finally:
        stop_process(proc)


@dataclass
class _Watch:
    proc: "subprocess.Popen[bytes]"
    url: str
    log: Path

    def sample(self, t_s: float, sent: int) -> Sample | None:
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise SoakError(f"the worker exited with {self.proc.returncode}:\n{tail}")
        return take_sample(self.proc.pid, self.url, t_s, sent)

    def ready(self, partitions: int) -> None:
        """Wait until the worker reports the lag of every partition: it has joined."""
        deadline = time.monotonic() + READY_S
        while True:
            got = self.sample(0.0, 0)
            if got is not None and got.partitions_seen >= partitions:
                return
            if time.monotonic() > deadline:
                raise SoakError(f"the worker was not ready in {READY_S:g} s (see {self.log})")
            time.sleep(0.5)


async def _drive(
    settings: StreamSettings, topics: Topics, plan: Plan, watch: _Watch
) -> tuple[list[Sample], float | None]:
    """Produce for the plan's minutes, sampling; then wait for the worker to catch up."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=20, acks=1)
    await producer.start()
    load = _Load(plan, record_pool(POOL_RECORDS))
    samples: list[Sample] = []
    try:
        started = time.monotonic()
        producing = asyncio.create_task(load.run(producer, topics.flows, started))
        for k in range(1, int(plan.minutes * 60 / plan.sample_s) + 1):
            await asyncio.sleep(max(0.0, started + k * plan.sample_s - time.monotonic()))
            if producing.done():
                producing.result()  # raises what stopped it
            got = await asyncio.to_thread(watch.sample, time.monotonic() - started, load.sent)
            if got is None:
                raise SoakError(f"the worker's metrics page stopped answering (see {watch.log})")
            samples.append(got)
            print(
                f"{got.t_s:6.0f} s  RSS {got.rss_bytes / (1 << 20):7.1f} MiB  lag {got.lag:7.0f}  "
                f"links {got.links_tracked:6.0f}  records in {got.records_in:9.0f} of {got.sent}",
                flush=True,
            )
        load.stopping = True
        await producing
    finally:
        await producer.stop()
    stopped = time.monotonic()
    while time.monotonic() - stopped < DRAIN_S:
        got = await asyncio.to_thread(watch.sample, time.monotonic() - started, load.sent)
        if got is not None and got.records_in >= load.sent and got.lag == 0:
            return samples, time.monotonic() - stopped
        await asyncio.sleep(0.5)
    return samples, None


class _Load:
    """The plan's records, paced; ``sent`` counts those handed to Kafka."""

    def __init__(self, plan: Plan, pool: list[dict[str, Any]]) -> None:
        self.plan = plan
        self.pool = pool
        self.rng = random.Random(plan.seed)
        self.active = [self._name(k) for k in range(plan.links)]
        self.born = plan.links  # links named so far
        self.sent = 0
        self.made = 0  # records built
        self.stopping = False

    @staticmethod
    def _name(k: int) -> str:
        return f"soak-{k:07d}"

    async def run(self, producer: AIOKafkaProducer, topic: str, started: float) -> None:
        churned = 0
        while not self.stopping:
            elapsed = time.monotonic() - started
            for _ in range(int(elapsed * self.plan.links * self.plan.churn / 60) - churned):
                self.active[self.rng.randrange(self.plan.links)] = self._name(self.born)
                self.born += 1
                churned += 1
            due = int(elapsed * self.plan.rate) - self.sent
            now_s = time.time()
            pending = [
                await producer.send(topic, *self._record(now_s), timestamp_ms=int(now_s * 1000))
                for _ in range(due)
            ]
            await asyncio.gather(*pending)
            self.sent += due
            await asyncio.sleep(max(0.0, STEP_S - (time.monotonic() - started - elapsed)))

    def _record(self, now_s: float) -> tuple[bytes, bytes]:
        """(value, key) of the next record: a pool flow for a random active link."""
        link = self.rng.choice(self.active)
        fields = dict(self.pool[self.made % len(self.pool)])
        self.made += 1
        fields["link"] = link
        fields["ts"] = now_s
        if "start" in fields:
            fields["start"] = max(0.0, now_s + fields["start"])
        return json.dumps(fields).encode(), link.encode()

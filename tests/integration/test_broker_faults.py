"""Broker faults against real processes: nothing published is lost or counted twice.

Both tests run on the package's three-broker cluster (replication factor 3,
``min.insync.replicas`` 2), with a real `linkcast worker` and linkcast's own
producer (idempotent, ``acks=all``):

1. One broker, the leader of a flows partition, is killed with ``kill -9``
   while 100,000 records stream, and started again once the stream has gone
   on without it. The producer and the worker move to the new leaders.
2. The whole cluster is stopped for 30 s while `linkcast simulate` publishes,
   and started again. The producer and the worker stay up (same processes: no
   crash, no restart loop), say that Kafka does not answer in one line and
   then every 10 s, and show it on the worker's /metrics
   (``linkcast_kafka_reachable`` 0, then 1, with the outage's seconds); when
   the cluster is back both resume by themselves, and every record the
   simulator made is in the flows topic.

Both tests end with the exact accounting of tests/e2e/workers.py: every
link's newest state holds exactly the records in the flows topic (bytes,
packets and flows), every bin with traffic holds exactly its records, a bin
published twice has one content, nothing is late or dead-lettered. Test 2
also waits out the producer's backlog: links whose records the simulator
held during the outage must not have their bins closed by the outage's
silence (streams.processor, "a silence the worker could not have heard").

What test 2 does not assert, and why: after the whole cluster stopped and
started again (with SIGTERM, and with ``kill -9`` too), Kafka 4.3.1 has been
seen to append a batch of the idempotent producer twice, the second copy
right after the first, with the same producer id and base sequence (dumped
from the partition's log). So test 2 counts what the flows topic holds,
checks that no record the simulator made is missing from it, and reports the
copies (``kafka_duplicates``) instead of asserting none.
"""

import asyncio
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from deploy.localkafka import LocalCluster
from producers.publish import PublishSummary, publish
from producers.simulator import SimulationConfig, simulate
from streams.schemas import FlowRecord
from streams.topics import Topics
from tests.e2e.workers import (
    T0,
    Expected,
    alive,
    assert_each_record_counted_once,
    fast_env,
    flow,
    owners,
    state_totals,
    wait_for_state_totals,
)
from tests.helpers import linkcast_process, read_topic, run_linkcast, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

RECORDS = 100_000
LINKS = 100
RATE = 5_000  # records per second of event time, published in real time: 20 s of stream
OUTAGE_S = 30.0


class Publishing:
    """linkcast's producer (producers.publish) in a thread, paced in event time."""

    def __init__(self, bootstrap: str, topic: str, records: list[FlowRecord]) -> None:
        self.handed = 0  # records handed to the producer so far
        self.summary: PublishSummary | None = None
        self.error: BaseException | None = None
        self._args = (bootstrap, topic, records)
        self._thread = threading.Thread(target=self._run, name="publishing", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        bootstrap, topic, records = self._args
        try:
            self.summary = asyncio.run(
                publish(
                    records,
                    bootstrap=bootstrap,
                    topic=topic,
                    speed=1.0,
                    on_progress=self._progress,
                )
            )
        except BaseException as exc:  # handed to the test by join()
            self.error = exc

    def _progress(self, summary: PublishSummary) -> None:
        self.handed = summary.records

    def join(self, timeout_s: float) -> PublishSummary:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), f"publishing took longer than {timeout_s} s"
        if self.error is not None:
            raise AssertionError(f"publishing failed: {self.error!r}") from self.error
        assert self.summary is not None
        return self.summary


def partitions(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Each partition of ``topic`` with its leader and in-sync replicas."""

    async def describe() -> list[dict[str, Any]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            (described,) = await admin.describe_topics([topic])
            return sorted(described["partitions"], key=lambda p: p["partition"])
        finally:
            await admin.close()

    return asyncio.run(describe())


def test_a_broker_killed_while_100000_records_stream_loses_and_doubles_nothing(
    three_broker_cluster: LocalCluster, topic_prefix: str, tmp_path: Path, record_property
):
    cluster = three_broker_cluster
    bootstrap = cluster.bootstrap
    env = fast_env(bootstrap, topic_prefix, tmp_path, partitions="4", replication="3")
    topics = Topics(topic_prefix)
    records = [
        flow(f"core-{i % LINKS:03}", T0 + i / RATE, 64 + (i * 7919) % 1400, 1 + i % 5)
        for i in range(RECORDS)
    ]
    expected = Expected()
    expected.add(records)
    assert run_linkcast(["topics", "create"], env).returncode == 0
    log = tmp_path / "worker.log"
    with linkcast_process(["worker"], env, log) as worker:
        owners(bootstrap, topic_prefix, worker, log)
        stream = Publishing(bootstrap, topics.flows, records)
        started_at = time.monotonic()
        wait_until(lambda: alive(worker, log) and stream.handed >= RECORDS // 5, 60, "20% sent")
        victim = partitions(bootstrap, topics.flows)[0]["leader"]
        cluster.kill(victim)
        killed_at = time.monotonic()
        # the stream goes on over the two brokers left
        handed = stream.handed
        wait_until(
            lambda: alive(worker, log) and stream.handed >= handed + RECORDS // 5,
            90,
            "20% more sent with a broker down",
        )
        assert stream.handed < RECORDS, "the broker was to come back mid-stream"
        assert cluster.start(timeout_s=120) == [victim]
        restarted_at = time.monotonic()
        summary = stream.join(180)
        sent_at = time.monotonic()
        assert summary.records == RECORDS
        wait_for_state_totals(bootstrap, topics, expected, worker, log, "the totals", 180)
        done_at = time.monotonic()
        wait_until(
            lambda: all(len(p["isr"]) == 3 for p in partitions(bootstrap, topics.flows)),
            90,
            f"broker {victim} back in sync on every flows partition",
        )
    check = assert_each_record_counted_once(bootstrap, topics, expected)
    for name, value in {
        "start_to_kill_s": killed_at - started_at,
        "broker_down_s": restarted_at - killed_at,
        "start_to_sent_s": sent_at - started_at,
        "kill_to_totals_s": done_at - killed_at,
        "window_reemissions": check.duplicates,
    }.items():
        record_property(name, round(value, 1))
        print(f"{name}: {value:.1f}")


def metric(port: str, name: str) -> float | None:
    """A sample of the worker's /metrics, or None when it is not there."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return None


def test_the_whole_cluster_down_30_s_producer_and_worker_wait_resume_and_lose_nothing(
    three_broker_cluster: LocalCluster, topic_prefix: str, tmp_path: Path, record_property
):
    cluster = three_broker_cluster
    bootstrap = cluster.bootstrap
    env = fast_env(bootstrap, topic_prefix, tmp_path, partitions="4", replication="3")
    topics = Topics(topic_prefix)
    port = env["LINKCAST_WORKER_PORT"]
    config = SimulationConfig(links=20, duration_s=70, rate=150, seed=5, start_s=T0)
    made = Counter(r.model_dump_json(exclude_none=True) for r in simulate(config))
    assert run_linkcast(["topics", "create"], env).returncode == 0
    worker_log, sim_log = tmp_path / "worker.log", tmp_path / "simulate.log"
    simulate_args = ["simulate", "--links", "20", "--duration", "70", "--rate", "150"]
    simulate_args += ["--seed", "5", "--start", str(T0), "--speed", "1"]
    with linkcast_process(["worker"], env, worker_log) as worker:
        owners(bootstrap, topic_prefix, worker, worker_log)
        with linkcast_process(simulate_args, env, sim_log) as producer:
            wait_until(
                lambda: alive(worker, worker_log) and state_totals(bootstrap, topics.link_state),
                60,
                "the worker to store its first bins",
            )
            assert producer.poll() is None, sim_log.read_text()[-3000:]
            cluster.stop()
            down_at = time.monotonic()
            wait_until(
                lambda: alive(worker, worker_log) and metric(port, "linkcast_kafka_reachable") == 0,
                20,
                "the worker's metrics to say Kafka does not answer",
            )
            time.sleep(max(0.0, down_at + OUTAGE_S - time.monotonic()))  # the outage itself
            alive(worker, worker_log)
            assert producer.poll() is None, f"the producer gave up:\n{sim_log.read_text()[-3000:]}"
            assert sorted(cluster.start(timeout_s=120)) == [0, 1, 2]
            up_at = time.monotonic()
            records_before = metric(port, "linkcast_records_in_total") or 0
            assert producer.wait(timeout=180) == 0, sim_log.read_text()[-3000:]
        in_topic = [m.value for m in read_topic(bootstrap, topics.flows, 60)]
        held = Counter(value.decode() for value in in_topic)
        assert made - held == Counter(), "records made by the simulator and lost"
        assert set(held) == set(made), "records in the flows topic that were never made"
        expected = Expected()  # each copy Kafka holds is a record of its own to the worker
        expected.add(FlowRecord.model_validate_json(value) for value in in_topic)
        wait_for_state_totals(bootstrap, topics, expected, worker, worker_log, "the totals", 120)
        # the worker reads on: more records in than when the cluster came back
        wait_until(
            lambda: (
                alive(worker, worker_log)
                and (metric(port, "linkcast_records_in_total") or 0) > records_before
            ),
            60,
            "the worker to read records again",
        )
        assert metric(port, "linkcast_kafka_reachable") == 1
        assert metric(port, "linkcast_kafka_outages_total") == 1
        unreachable_s = metric(port, "linkcast_kafka_unreachable_seconds_total")
        assert unreachable_s is not None
        assert unreachable_s >= OUTAGE_S - 4
    assert_each_record_counted_once(bootstrap, topics, expected)
    worker_text, sim_text = worker_log.read_text(), sim_log.read_text()
    for text in (worker_text, sim_text):
        assert f"Kafka at {bootstrap} does not answer" in text
        assert "still waiting" in text
        assert "answers again after" in text
    # aiokafka's own complaints are held to one line of each kind per 10 s
    outage_lines = [line for line in worker_text.splitlines() if "Unable connect" in line]
    assert len(outage_lines) <= 3 * (OUTAGE_S + (up_at - down_at)) / 10 + 6, outage_lines[:20]
    for name, value in {
        "down_s": up_at - down_at,
        "kafka_duplicates": sum((held - made).values()),
        "unreachable_s_metric": unreachable_s,
    }.items():
        record_property(name, round(value, 1))
        print(f"{name}: {value:.1f}")

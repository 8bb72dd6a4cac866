"""Which processing guarantee each LINKCAST_PROCESSING_GUARANTEE holds, with real workers.

``at_least_once`` (the default). A worker acknowledges a flows record once
the link state holding it is stored (streams.acks), and each link's stored
``last_offset`` makes a record redelivered after a crash count once: totals,
bins and ``bins_closed`` are exact across a ``kill -9``. Outputs
(classifications, windows, forecasts, alerts, link states) made after the
last commit are published again by the next owner of the partition, with the
same content. Shown by e2e/test_scale_out.py, which reports those
re-emissions as ``window_reemissions``.

``exactly_once``. Each checkpoint (every second) is one Kafka transaction
per flows partition: the outputs made from the partition's records, the
changelog writes of its links and its consumed offsets commit together or
not at all (streams.transactions). A ``kill -9`` aborts the open
transactions; the next owner starts from the last commit. Totals are exact
as above, and a ``read_committed`` reader sees each window, classification
and forecast exactly once. A ``read_uncommitted`` reader may still see the
aborted ones. Shown here: two workers, one killed mid-stream, the survivor
takes over; classification and forecasting are on, with 0.25 s bins so that
links have the forecaster's 60 bins of history within the run.
"""

import asyncio
import json
import random
import time
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.admin import partitions_of
from streams.topics import Topics
from tests.e2e.workers import (
    T0,
    Expected,
    PacedPublisher,
    alive,
    assert_each_record_counted_once,
    fast_env,
    flow,
    kill_hard,
    owners,
    wait_for_state_totals,
    window_values,
)
from tests.helpers import free_port, linkcast_process, read_topic, run_linkcast, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

LINKS = 30
RATE = 150  # records per second of wall time and of event time
RECORDS = 4500  # 30 s of traffic
BIN_S = 0.25  # the forecaster needs 60 bins of history: 15 s


def test_exactly_once_outputs_each_window_classification_and_forecast_once_across_a_kill(
    kafka_bootstrap, topic_prefix, tmp_path: Path, record_property
):
    env = fast_env(
        kafka_bootstrap,
        topic_prefix,
        tmp_path,
        partitions="4",
        processing_guarantee="exactly_once",
        bin_s=str(BIN_S),
        classify="true",
        forecast="true",
    )
    topics = Topics(topic_prefix)
    links = [f"edge-{i:02}" for i in range(LINKS)]
    rng = random.Random(8)
    records = [
        flow(links[i % LINKS], T0 + i / RATE, rng.randrange(40, 1500), rng.randrange(1, 8))
        for i in range(RECORDS)
    ]
    expected = Expected(bin_s=BIN_S)
    expected.add(records)
    assert run_linkcast(["topics", "create"], env).returncode == 0

    def committed_bins() -> set[tuple[str, float]]:
        windows = window_values(kafka_bootstrap, topics.windows, committed_only=True)
        return {(w["link"], w["bin_start_s"]) for w in windows}

    log1, log2 = tmp_path / "worker1.log", tmp_path / "worker2.log"
    env1 = env | {"LINKCAST_DATA_DIR": str(tmp_path / "d1")}
    env2 = env | {
        "LINKCAST_DATA_DIR": str(tmp_path / "d2"),
        "LINKCAST_WORKER_PORT": str(free_port()),
    }
    with linkcast_process(["worker"], env1, log1) as w1:
        [(first, owned)] = owners(kafka_bootstrap, topic_prefix, w1, log1).items()
        assert owned == [0, 1, 2, 3]
        with PacedPublisher(kafka_bootstrap, topics.flows, records, RATE) as pub:
            wait_until(
                lambda: alive(w1, log1) and committed_bins(),
                60,
                "worker 1 to commit windows",
            )
            with linkcast_process(["worker"], env2, log2) as w2:
                # a rebalance: worker 1 commits its transactions as it gives partitions up
                shared = owners(kafka_bootstrap, topic_prefix, w2, log2, members=2)
                assert sorted(len(ps) for ps in shared.values()) == [2, 2], shared
                # kill worker 1 mid-stream, once forecasts are made, amid a transaction
                mark = pub.published
                wait_until(
                    lambda: (
                        alive(w1, log1)
                        and pub.published >= mark + RATE * 3
                        and read_topic(kafka_bootstrap, topics.forecasts, committed_only=True)
                        and open_transactions(kafka_bootstrap, topics.classifications)
                        & set(shared[first])
                    ),
                    60,
                    "forecasts, and worker 1 amid a transaction",
                )
                killed_at, killed_wall = kill_hard(w1), time.time()
                assert pub.published < RECORDS, "worker 1 was to die mid-stream"
                [(_, owned)] = owners(kafka_bootstrap, topic_prefix, w2, log2, gone=[first]).items()
                assert owned == [0, 1, 2, 3]
                pub.join(60)
                wait_for_state_totals(
                    kafka_bootstrap,
                    topics,
                    expected,
                    w2,
                    log2,
                    "the published totals, committed",
                    committed_only=True,
                )
                wait_until(
                    lambda: alive(w2, log2) and set(expected.bins) <= committed_bins(),
                    60,
                    "every bin with traffic to close",
                )
                took_over_s = time.monotonic() - killed_at

    check = assert_each_record_counted_once(kafka_bootstrap, topics, expected, committed_only=True)
    if check.duplicates:
        copies = duplicated_windows(kafka_bootstrap, topics.windows)
        raise AssertionError(
            f"{check.duplicates} extra copies of windows for read_committed readers; worker 1 "
            f"was killed at {killed_wall:.3f} (wall clock); the first: {copies}"
        )

    classified = Counter(
        (c["link"], c["ts"]) for c in values(kafka_bootstrap, topics.classifications)
    )
    assert classified == Counter((r.link, r.ts) for r in records), (
        "each record is classified exactly once"
    )
    forecasts = Counter(
        (f["link"], f["made_at_s"]) for f in values(kafka_bootstrap, topics.forecasts)
    )
    assert forecasts, "links had the forecaster's history: forecasts were made"
    assert max(forecasts.values()) == 1, "a forecast was published twice"

    aborted = {  # what a read_uncommitted reader also saw: the killed worker's open transaction
        topic: len(read_topic(kafka_bootstrap, topic)) - len(values(kafka_bootstrap, topic))
        for topic in (topics.windows, topics.classifications, topics.forecasts)
    }
    assert aborted[topics.classifications] > 0, "the kill aborted worker 1's open transactions"
    for name, value in {
        "kill_to_all_bins_closed_s": round(took_over_s, 1),
        "forecasts": sum(forecasts.values()),
        **{f"aborted_{t.rsplit('.', 1)[1]}": n for t, n in aborted.items()},
    }.items():
        record_property(name, value)


def duplicated_windows(bootstrap: str, topic: str, first: int = 10) -> dict[str, list[str]]:
    """The first windows of ``topic`` a read_committed reader sees more than once, each
    copy as partition@offset and the wall time it was emitted at, to tell who made it."""
    copies: dict[str, list[str]] = {}
    for message in read_topic(bootstrap, topic, timeout_s=30, committed_only=True):
        window = json.loads(message.value)
        name = f"{window['link']}@{window['bin_start_s'] - T0:+.2f}"
        copies.setdefault(name, []).append(
            f"{message.partition}@{message.offset} emitted {window['emitted_at_s']:.3f}"
        )
    return dict(list({k: v for k, v in copies.items() if len(v) > 1}.items())[:first])


def open_transactions(bootstrap: str, topic: str) -> set[int]:
    """The partitions of ``topic`` with messages of an open transaction: each partition's
    end (high watermark) is past its last stable offset, the end read_committed sees."""
    return asyncio.run(_open_transactions(bootstrap, topic))


async def _open_transactions(bootstrap: str, topic: str) -> set[int]:
    ends = {}
    for isolation in ("read_uncommitted", "read_committed"):
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(await partitions_of(bootstrap, topic))]
            ends[isolation] = await consumer.end_offsets(tps)
        finally:
            await consumer.stop()
    return {
        tp.partition
        for tp, end in ends["read_uncommitted"].items()
        if end > ends["read_committed"][tp]
    }


def values(bootstrap: str, topic: str) -> list[dict]:
    """The records of ``topic`` a read_committed consumer sees."""
    return [json.loads(m.value) for m in read_topic(bootstrap, topic, committed_only=True)]

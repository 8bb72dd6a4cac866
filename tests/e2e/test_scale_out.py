"""Several workers share the flows partitions; adding one or killing one loses nothing.

Two real `linkcast worker` processes form one consumer group over the 4
partitions of the flows topic while a producer publishes a steady stream:

1. worker 1 runs alone and owns all 4 partitions;
2. mid-stream, worker 2 starts (its own, empty data dir): the group rebalances
   to 2 partitions each, and worker 2 recovers the state of the partitions it
   takes over from the table's changelog;
3. mid-stream, worker 1 is killed with ``kill -9``: once its session times
   out, worker 2 owns all 4 partitions and recovers worker 1's state from the
   changelog (its standby copies are filled from it too).

The guarantee asserted is the worker's, at-least-once delivery with offsets
kept in the link state: every record counts exactly once. At the end, for
every link, the newest link-state's flows, bytes and packets equal what was
published, exactly; every (link, bin) on the windows topic has one content,
and a bin with traffic has exactly its records' bytes, packets and flows. A
window may be published more than once after the kill (outputs of records
processed after the last commit are sent again): such re-emissions must be
identical to the first, and the test reports how many there were. Each link's
``bins_closed`` equals the number of distinct bins published for it, so no bin
was counted twice in the state either.
"""

import random
import time
from pathlib import Path

import pytest

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
    state_totals,
    wait_for_state_totals,
)
from tests.helpers import free_port, linkcast_process, run_linkcast, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

LINKS = 30
RATE = 150  # records per second of wall time, and of event time: a live stream
RECORDS = 3600  # 24 s of traffic, 5 records a second per link
CLOSE_S = 60


@pytest.mark.parametrize("reader", ["faust", "direct"])
def test_workers_added_and_killed_mid_stream_lose_and_double_count_nothing(
    kafka_bootstrap, topic_prefix, tmp_path: Path, record_property, reader
):
    env = fast_env(kafka_bootstrap, topic_prefix, tmp_path, partitions="4", flows_reader=reader)
    topics = Topics(topic_prefix)
    links = [f"edge-{i:02}" for i in range(LINKS)]
    rng = random.Random(3)
    records = [
        flow(links[i % LINKS], T0 + i / RATE, rng.randrange(40, 1500), rng.randrange(1, 8))
        for i in range(RECORDS)
    ]
    expected = Expected()
    expected.add(records)
    assert run_linkcast(["topics", "create"], env).returncode == 0
    log1, log2 = tmp_path / "worker1.log", tmp_path / "worker2.log"
    timings: dict[str, float] = {}
    with linkcast_process(
        ["worker"], env | {"LINKCAST_DATA_DIR": str(tmp_path / "d1")}, log1
    ) as w1:
        [(first, owned)] = owners(kafka_bootstrap, topic_prefix, w1, log1, reader=reader).items()
        assert owned == [0, 1, 2, 3]
        with PacedPublisher(kafka_bootstrap, topics.flows, records, RATE) as pub:
            wait_until(
                lambda: alive(w1, log1) and state_totals(kafka_bootstrap, topics.link_state),
                CLOSE_S,
                "worker 1 to close bins",
            )
            # 2. a second worker joins mid-stream
            joined_at = time.monotonic()
            env2 = {
                "LINKCAST_DATA_DIR": str(tmp_path / "d2"),
                "LINKCAST_WORKER_PORT": str(free_port()),
            }
            with linkcast_process(["worker"], env | env2, log2) as w2:
                shared = owners(kafka_bootstrap, topic_prefix, w2, log2, members=2, reader=reader)
                timings["join_to_rebalanced_s"] = time.monotonic() - joined_at
                assert sorted(p for ps in shared.values() for p in ps) == [0, 1, 2, 3]
                assert all(len(ps) == 2 for ps in shared.values()), shared
                assert first in shared, "worker 1 stayed in the group (with its member id)"
                assert pub.published < RECORDS, "worker 2 was to join mid-stream"
                # 3. kill -9 the first worker mid-stream, once the stream has moved on
                mark = pub.published
                wait_until(
                    lambda: alive(w1, log1) and pub.published >= mark + RATE * 3,
                    CLOSE_S,
                    "3 s more of traffic on two workers",
                )
                assert pub.published < RECORDS, "worker 1 was to die mid-stream"
                killed_at = kill_hard(w1)
                [(survivor, owned)] = owners(
                    kafka_bootstrap, topic_prefix, w2, log2, reader=reader
                ).items()
                timings["kill_to_rebalanced_s"] = time.monotonic() - killed_at
                assert owned == [0, 1, 2, 3]
                assert survivor in shared
                assert survivor != first, "worker 1 was killed: worker 2 survives"
                pub.join(60)
                wait_for_state_totals(
                    kafka_bootstrap, topics, expected, w2, log2, "the published totals"
                )
                timings["kill_to_totals_s"] = time.monotonic() - killed_at

    check = assert_each_record_counted_once(kafka_bootstrap, topics, expected)
    for name, value in {**timings, "window_reemissions": check.duplicates}.items():
        record_property(name, round(value, 1))

"""Every stream semantic of ARCHITECTURE.md (and issue 5, part 1), in one place.

The tests in this module run real `linkcast worker` processes against a real
broker, publish hand-written flows with chosen event times, and check the
windows, link-state and dead-letter topics, the table's changelog and the
RocksDB files. Where another test already covers a semantic well, the list
below points at it instead of testing it again here;
``test_every_semantic_points_at_real_tests`` keeps the list honest.

Settings here: 1 s bins, 2 s lateness, windows of 3 bins, idle closing after
2 s of silence, a tick every 0.5 s, no models (LINKCAST_FORECAST and
LINKCAST_CLASSIFY false).

Each semantic, then the tests that check it (paths below tests/):

- event time: bins follow the records' timestamps, not their arrival
    e2e/test_semantics.py::test_bins_follow_event_time_with_a_watermark_per_link
- bins are half-open, a bin closes when the watermark reaches its end
    unit/streams/test_bins.py::test_bin_closes_when_watermark_passes_its_end
    unit/streams/test_bins.py::test_watermark_exactly_on_a_bin_end_closes_that_bin
    unit/streams/test_bins.py::test_record_on_a_bin_boundary_belongs_to_the_later_bin
- replays at any speed give the same windows, byte for byte
    e2e/test_determinism.py::test_paced_one_partition_and_unpaced_four_partitions_agree
- out-of-order records within the lateness are counted in their own bin
    e2e/test_semantics.py::test_bins_follow_event_time_with_a_watermark_per_link
    unit/streams/test_bins.py::test_out_of_order_record_within_lateness_is_counted_in_its_own_bin
- a watermark per link: one link's timestamps never close another's bins
    e2e/test_semantics.py::test_bins_follow_event_time_with_a_watermark_per_link
    unit/streams/test_processor.py::test_one_link_clock_never_closes_another_links_bins
- late records are counted in link state and dead-lettered with reason `late`
    e2e/test_semantics.py::test_bins_follow_event_time_with_a_watermark_per_link
    unit/streams/test_processor.py::test_a_late_record_is_dead_lettered_and_counted_on_the_link
    e2e/test_pipeline.py::test_bad_records_go_to_the_dead_letter_topic_and_good_ones_are_all_counted
- silent links close their bins as zero traffic from the timer
    e2e/test_semantics.py::test_bins_follow_event_time_with_a_watermark_per_link
    unit/streams/test_processor.py::test_a_silent_link_closes_its_bins_on_ticks_once_idle
    unit/streams/test_bins.py::test_long_silence_emits_one_window_of_empty_bins_then_skips_to_the_next_traffic
- the timer closes nothing while the partition has a backlog
    unit/streams/test_processor.py::test_ticks_close_nothing_while_the_partition_has_a_backlog
- the incremental bins equal a naive reference (property test)
    unit/streams/test_bins.py::test_incremental_bins_match_the_naive_reference
- per-link state in a Faust table with a changelog topic, RocksDB by default
    e2e/test_semantics.py::test_state_survives_sigterm_kill_9_and_an_empty_data_dir
- a plain mapping stands in for the table in unit tests
    unit/streams/test_processor.py::test_state_survives_a_restart_through_the_store
- idle links are expired after LINKCAST_LINK_EXPIRE_AFTER_S (a tombstone)
    e2e/test_semantics.py::test_an_idle_link_is_expired_with_tombstones_and_starts_afresh
    unit/streams/test_processor.py::test_a_link_silent_for_the_expiry_time_is_forgotten_and_starts_afresh
- recovery after SIGTERM or kill -9, on the same or an empty data dir: no bin lost or doubled
    e2e/test_semantics.py::test_state_survives_sigterm_kill_9_and_an_empty_data_dir
- a record redelivered after a restart is not counted twice
    unit/streams/test_processor.py::test_a_redelivered_record_is_not_counted_twice
    e2e/test_semantics.py::test_state_survives_sigterm_kill_9_and_an_empty_data_dir
- results do not depend on the number of partitions or workers
    e2e/test_determinism.py::test_paced_one_partition_and_unpaced_four_partitions_agree
    e2e/test_scale_out.py::test_workers_added_and_killed_mid_stream_lose_and_double_count_nothing
- bad input is dead-lettered with raw bytes, reason and offset; the stream goes on
    e2e/test_pipeline.py::test_bad_records_go_to_the_dead_letter_topic_and_good_ones_are_all_counted
    unit/streams/test_decode.py
"""

import base64
import importlib
import json
import random
import time
from pathlib import Path

import pytest

from streams.processor import partition_key
from streams.schemas import FlowRecord
from streams.topics import Topics
from tests.e2e.workers import (
    T0,
    Expected,
    PacedPublisher,
    alive,
    assert_each_record_counted_once,
    changelog_topics,
    check_windows,
    fast_env,
    flow,
    kill_hard,
    latest_by_key,
    owners,
    publish,
    state_totals,
    stop,
    table_link,
    wait_for_state_totals,
    window_values,
)
from tests.helpers import (
    json_values,
    linkcast_process,
    read_topic,
    run_linkcast,
    topic_names,
    wait_until,
)

CLOSE_S = 60  # the timer closes bins within a few seconds of silence
RATE = 30  # records/s of the paced segments: 8 s each, so a stop lands mid-stream


@pytest.mark.kafka
@pytest.mark.e2e
def test_bins_follow_event_time_with_a_watermark_per_link(
    kafka_bootstrap, topic_prefix, tmp_path: Path
):
    # One partition: both links share it, and so share one worker's clock, if it had one.
    # event time (s after T0)   0    1    2    3    4    5    6 ...     (a: bins 0..8)
    #   a: 0.2  1.5  0.7(out of order)  5.5 -> watermark 3.5, bins 0-2 close
    #      1.9 (bin 1 has closed: late)      then silence: the timer closes 3.. 8
    #   b, 1000 s behind a: 0.5, then 1.5 after a's 5.5 -> not late: b has its own watermark
    env = fast_env(kafka_bootstrap, topic_prefix, tmp_path, partitions="1")
    topics = Topics(topic_prefix)
    b0 = T0 - 1000
    late = flow("a", T0 + 1.9, 999)
    records = [
        flow("a", T0 + 0.2, 100),
        flow("b", b0 + 0.5, 10),
        flow("a", T0 + 1.5, 200, 2),
        flow("a", T0 + 0.7, 50),
        flow("a", T0 + 5.5, 400, 4),
        late,
        flow("b", b0 + 1.5, 20),
    ]
    expected = Expected()
    expected.add(r for r in records if r is not late)
    assert run_linkcast(["topics", "create"], env).returncode == 0
    log = tmp_path / "worker.log"
    with linkcast_process(["worker"], env, log) as proc:
        owners(kafka_bootstrap, topic_prefix, proc, log)
        publish(kafka_bootstrap, topics.flows, records)  # within a second of wall time
        wait_for_state_totals(
            kafka_bootstrap,
            topics,
            expected,
            proc,
            log,
            "every bin to close, the last on the timer",
        )
        # the timer closes empty bins until the window is all zeros (3 bins), then skips
        wanted = {("a", T0 + k) for k in range(9)} | {("b", b0 + k) for k in range(5)}
        windows = wait_until(
            lambda: (
                (w := window_values(kafka_bootstrap, topics.windows))
                and wanted <= {(x["link"], x["bin_start_s"]) for x in w}
                and w
            ),
            CLOSE_S,
            "the empty bins after each link's last record",
        )
        states = latest_by_key(read_topic(kafka_bootstrap, topics.link_state))
        letters = json_values(read_topic(kafka_bootstrap, topics.deadletter))

    check = check_windows(windows, expected)
    assert check.wrong == {}, "a bin's traffic differs from what its records' event times say"
    assert set(check.emitted) == wanted
    assert check.duplicates == 0
    a, b = states[b"a"], states[b"b"]
    assert (a["late_records"], b["late_records"]) == (1, 0)
    assert (a["bins_closed"], b["bins_closed"]) == (9, 5)
    assert a["watermark_s"] >= T0 + 5.5 - 2  # a's own clock closed its bins
    assert b["watermark_s"] < T0 - 990  # a's clock, 1000 s ahead, never moved b's
    [letter] = letters
    assert letter["reason"] == "late"
    assert base64.b64decode(letter["raw_b64"]) == late.model_dump_json(exclude_none=True).encode()
    assert (letter["partition"], letter["offset"]) == (0, records.index(late))


@pytest.mark.kafka
@pytest.mark.e2e
def test_an_idle_link_is_expired_with_tombstones_and_starts_afresh(
    kafka_bootstrap, topic_prefix, tmp_path: Path
):
    # checkpoints every second: the link is stored before it expires, so that its deletion
    # is a tombstone (a link that expires unstored leaves nothing to delete)
    env = fast_env(
        kafka_bootstrap,
        topic_prefix,
        tmp_path,
        partitions="1",
        link_expire_after_s="3",
        checkpoint_s="1",
    )
    topics = Topics(topic_prefix)
    [changelog] = changelog_topics(topic_prefix, tmp_path / "naming")
    assert run_linkcast(["topics", "create"], env).returncode == 0
    log = tmp_path / "worker.log"
    with linkcast_process(["worker"], env, log) as proc:
        owners(kafka_bootstrap, topic_prefix, proc, log)
        publish(
            kafka_bootstrap, topics.flows, [flow("gone", T0 + 0.5, 100), flow("gone", T0 + 1.5, 50)]
        )

        def values_of(topic: str, link: str) -> list:
            return [
                m.value for m in read_topic(kafka_bootstrap, topic) if table_link(m.key) == link
            ]

        states = wait_until(
            lambda: (
                alive(proc, log)
                and (v := values_of(topics.link_state, "gone"))
                and v[-1] is None
                and v
            ),
            CLOSE_S,
            "a tombstone for the idle link on link-state",
        )
        assert json.loads(states[-2])["total_bytes"] == 150  # its bins all closed first
        kept = wait_until(
            lambda: (v := values_of(changelog, "gone")) and v[-1] is None and v,
            CLOSE_S,
            "the table's deletion (a tombstone) on its changelog",
        )
        assert json.loads(kept[-2])  # the state it had before
        publish(kafka_bootstrap, topics.flows, [flow("gone", T0 + 100.5, 7)])
        wait_until(
            lambda: (
                alive(proc, log)
                and state_totals(kafka_bootstrap, topics.link_state).get("gone") == (7, 1, 1)
            ),
            CLOSE_S,
            "the returning link to start from zero",
        )


def _segment(links: list[str], start_s: float, rng: random.Random) -> list[FlowRecord]:
    """Every link every 0.25 s for 10 s of event time from ``start_s``, in event-time order."""
    return [
        flow(link, start_s + k * 0.25 + 0.01 * i, rng.randrange(40, 1500), rng.randrange(1, 4))
        for k in range(40)
        for i, link in enumerate(links)
    ]


#: beside the links, the table holds each partition's next offset not in the store
MARKERS = {partition_key(p) for p in range(4)}


def stored_keys(bootstrap: str, changelog: str) -> set[str]:
    """The keys (links and MARKERS) the table's changelog holds a value for now."""
    table = latest_by_key(read_topic(bootstrap, changelog))
    return {table_link(k) for k, v in table.items() if v}


@pytest.mark.kafka
@pytest.mark.e2e
def test_state_survives_sigterm_kill_9_and_an_empty_data_dir(
    kafka_bootstrap, topic_prefix, tmp_path: Path, record_property
):
    """Four workers one after another on one topic prefix, each stopped mid-stream.

    1. worker 1 (data dir D1) is stopped with SIGTERM mid-stream;
    2. worker 2 on the same D1 continues, and is killed with kill -9 mid-stream;
    3. worker 3 on an EMPTY data dir: all its state comes from the changelog;
    4. worker 4 on D1 again, whose RocksDB files lag the changelog by a whole phase.

    At the end every link's link-state totals equal what was published, every
    bin with traffic has exactly its records, every (link, bin) carries one
    content however often it was published (at-least-once allows a re-emission
    after kill -9, with identical content), and each link counted exactly as
    many bins as the windows topic holds for it.
    """
    d1, d2 = tmp_path / "d1", tmp_path / "d2-empty"
    env = fast_env(kafka_bootstrap, topic_prefix, tmp_path, data_dir=str(d1))
    topics = Topics(topic_prefix)
    links = [f"link-{i}" for i in range(6)]
    rng = random.Random(7)
    segments = [_segment(links, T0 + 1000 * k, rng) for k in range(3)]
    expected = Expected()

    def progressed(beyond: dict) -> bool:
        now = state_totals(kafka_bootstrap, topics.link_state)
        return any(now.get(link, (0, 0, 0))[0] > beyond.get(link, (0, 0, 0))[0] for link in links)

    assert run_linkcast(["topics", "create"], env).returncode == 0
    [changelog] = changelog_topics(topic_prefix, tmp_path / "naming")
    timings: dict[str, float] = {}
    # 1. SIGTERM mid-stream, then the same data dir
    log1, log2 = tmp_path / "worker1.log", tmp_path / "worker2.log"
    # no checkpoint but the first drain's: what is stored at the end, the stop stored
    with linkcast_process(["worker"], env | {"LINKCAST_CHECKPOINT_S": "30"}, log1) as w1:
        owners(kafka_bootstrap, topic_prefix, w1, log1)
        pub = PacedPublisher(kafka_bootstrap, topics.flows, segments[0], RATE).start()
        wait_until(lambda: alive(w1, log1) and progressed({}), CLOSE_S, "worker 1 to close bins")
        assert pub.published < len(segments[0]), "worker 1 was to stop mid-stream"
        assert stop(w1, log1) == 0
    # the stop stored every link it had counted records of (streams.app, stop_checkpoint),
    # those it published a state of among them
    published = set(state_totals(kafka_bootstrap, topics.link_state))
    assert published
    assert stored_keys(kafka_bootstrap, changelog) - MARKERS >= published
    pub.join(60)
    assert list(d1.rglob("CURRENT")), "no RocksDB files in the data dir: is the table in memory?"
    expected.add(segments[0])
    with linkcast_process(["worker"], env, log2) as w2:
        owners(kafka_bootstrap, topic_prefix, w2, log2)
        wait_for_state_totals(kafka_bootstrap, topics, expected, w2, log2, "segment 1's totals")
        # 2. kill -9 mid-stream
        before = state_totals(kafka_bootstrap, topics.link_state)
        dead = set(owners(kafka_bootstrap, topic_prefix, w2, log2))
        with PacedPublisher(kafka_bootstrap, topics.flows, segments[1], RATE) as pub:
            wait_until(lambda: alive(w2, log2) and progressed(before), CLOSE_S, "segment 2 bins")
            assert pub.published < len(segments[1]), "worker 2 was to die mid-stream"
            killed_at = kill_hard(w2)
            # 3. an empty data dir: the state must come from the changelog
            log3 = tmp_path / "worker3.log"
            with linkcast_process(["worker"], env | {"LINKCAST_DATA_DIR": str(d2)}, log3) as w3:
                owners(kafka_bootstrap, topic_prefix, w3, log3, gone=dead)
                timings["kill_to_assigned_s"] = time.monotonic() - killed_at
                pub.join(60)
                expected.add(segments[1])
                wait_for_state_totals(
                    kafka_bootstrap, topics, expected, w3, log3, "segment 2's totals"
                )
                timings["kill_to_totals_s"] = time.monotonic() - killed_at
                assert stop(w3, log3) == 0
    # 4. back on D1, whose RocksDB state is a phase behind the changelog
    log4 = tmp_path / "worker4.log"
    with linkcast_process(["worker"], env, log4) as w4:
        owners(kafka_bootstrap, topic_prefix, w4, log4)
        publish(kafka_bootstrap, topics.flows, segments[2])
        expected.add(segments[2])
        wait_for_state_totals(kafka_bootstrap, topics, expected, w4, log4, "segment 3's totals")

    check = assert_each_record_counted_once(kafka_bootstrap, topics, expected)
    for name, value in {**timings, "window_reemissions": check.duplicates}.items():
        record_property(name, round(value, 1))
    assert changelog in topic_names(kafka_bootstrap)
    stored = stored_keys(kafka_bootstrap, changelog)
    assert stored - MARKERS == set(links)
    assert stored & MARKERS


def test_every_semantic_points_at_real_tests():
    table = __doc__.split("(paths below tests/):")[1].strip().splitlines()
    semantics: dict[str, list[str]] = {}
    for line in table:
        if line.startswith("- "):
            refs = semantics[line[2:]] = []
        else:
            refs.append(line.strip())
    assert len(semantics) >= 15
    for semantic, refs in semantics.items():
        assert refs, f"no test for {semantic!r}"
        for ref in refs:
            path, _, name = ref.partition("::")
            module = importlib.import_module("tests." + path.removesuffix(".py").replace("/", "."))
            assert not name or callable(getattr(module, name, None)), f"no test {ref}"

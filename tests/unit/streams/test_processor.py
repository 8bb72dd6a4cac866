"""The worker's per-message logic, with a plain dict as its table."""

import base64
import json
from collections.abc import Iterator, MutableMapping
from typing import Any

from streams.bins import BinConfig
from streams.processor import LinkProcessor, Outputs, write_states
from streams.schemas import DeadLetter, LinkState, RejectReason, WindowRecord

T0 = 1_767_225_600.0


def processor(
    store: dict | None = None, config: BinConfig | None = None, **options: Any
) -> LinkProcessor:
    """Bins of 1 s with 2 s of lateness unless ``config`` says otherwise, closing after 3 s
    of silence; ``options`` go to ``LinkProcessor``."""
    return LinkProcessor(
        config or BinConfig.of(1.0, 2.0, 10),
        {} if store is None else store,
        source_topic="p.flows",
        idle_close_after_s=3.0,
        **options,
    )


def flow(link: str, ts: float, nbytes: int = 100) -> tuple[bytes, bytes]:
    return link.encode(), json.dumps(
        {"link": link, "ts": ts, "bytes": nbytes, "packets": 1}
    ).encode()


def feed(proc: LinkProcessor, records, partition=0, first_offset=0, now_s=1000.0):
    outs = []
    for i, (key, value) in enumerate(records):
        proc.on_flow(
            key, value, partition=partition, offset=first_offset + i, timestamp_ms=None, now_s=now_s
        )
        out = proc.drain(now_s)
        proc.store_states(out)
        outs.append(out)
    return outs


def tick(proc: LinkProcessor, now_s: float, partition: int = 0, caught_up: bool = True):
    proc.on_tick(partition, now_s, caught_up=caught_up)
    out = proc.drain(now_s)
    proc.store_states(out)
    return out


def persist(proc: LinkProcessor, partition: int = 0, now_s: float = 1000.0):
    """Store every pending link, as the worker's checkpoint does for links pending long."""
    proc.persist_before(partition, 10**12)
    out = proc.drain(now_s)
    proc.store_states(out)
    return out


def windows(outs) -> list[WindowRecord]:
    return [WindowRecord.model_validate_json(v) for o in outs for _, v in o.windows]


def test_records_close_bins_and_publish_windows_and_link_state():
    proc = processor()
    outs = feed(proc, [flow("a", T0 + 0.5, 10), flow("a", T0 + 0.9, 5), flow("a", T0 + 3.5, 1)])
    (window,) = windows(outs)
    assert (window.link, window.bin_start_s, window.bytes, window.flows) == ("a", T0, 15, 2)
    assert window.bps == 120.0
    state = LinkState.model_validate_json(outs[-1].link_states[-1][1])
    assert (state.total_bytes, state.total_flows, state.bins_closed) == (15, 2, 1)


def test_a_bad_record_becomes_a_dead_letter_with_its_raw_bytes_and_offset():
    proc = processor()
    (out,) = feed(proc, [(b"a", b"{oops")], partition=3, first_offset=41)
    ((key, value, reason),) = out.deadletters
    letter = DeadLetter.model_validate_json(value)
    assert (reason, letter.partition, letter.offset, letter.topic) == (
        RejectReason.JSON,
        3,
        41,
        "p.flows",
    )
    assert base64.b64decode(letter.raw_b64) == b"{oops"
    assert key == b"a"


def test_a_late_record_is_dead_lettered_and_counted_on_the_link():
    proc = processor()
    outs = feed(proc, [flow("a", T0 + 0.5), flow("a", T0 + 5.0), flow("a", T0 + 1.2, 999)])
    ((_, value, reason),) = outs[-1].deadletters
    assert reason is RejectReason.LATE
    assert "LINKCAST_LATENESS_S" in DeadLetter.model_validate_json(value).detail
    assert proc.stored("a")["bins"]["late_records"] == 1
    tick(proc, now_s=2000.0)  # close everything: the late bytes must be nowhere
    assert proc.stored("a")["bins"]["total_bytes"] == 200
    (state,) = [LinkState.model_validate_json(v) for _, v in outs[-1].link_states]
    assert state.late_records == 1  # the API learns of the late record at once


def test_a_drain_that_does_not_store_keeps_the_changes_for_the_next_that_does():
    proc = processor()
    for offset, ts in enumerate([T0 + 0.5, T0 + 4.0, T0 + 5.0, T0 + 6.0]):
        proc.on_flow(*flow("a", ts), partition=0, offset=offset, timestamp_ms=None, now_s=1000.0)
        out = proc.drain(1000.0, store=False)
        assert out.states == {}
        assert len(out.link_states) == (offset > 0)  # the API hears of every closed bin
    assert proc.safe_offset(0) == 0  # nothing stored: nothing may be acknowledged
    stored = proc.drain(1000.0)  # a checkpoint: the link once, with its last record
    assert list(stored.states) == ["a", "partition 0"]
    proc.store_states(stored)
    assert proc.stored("a")["last_offset"] == 3
    assert proc.stored("a")["bins"]["bins_closed"] == 4
    assert proc.safe_offset(0) == 4


def test_a_redelivered_record_is_not_counted_twice():
    proc = processor()
    feed(proc, [flow("a", T0 + 0.5, 10), flow("a", T0 + 0.6, 10)])
    (again,) = feed(proc, [flow("a", T0 + 0.6, 10)], first_offset=1)
    assert again.duplicates == 1
    persist(proc)
    assert proc.stored("a")["bins"]["open"][0][1] == 20


def test_records_are_safe_to_acknowledge_only_once_their_link_is_stored():
    proc = processor()
    feed(proc, [flow("a", T0 + 0.5), flow("b", T0 + 0.5), flow("a", T0 + 0.7)])
    assert proc.store == {}  # no bin closed: the state is in memory only
    assert proc.safe_offset(0) == 0  # so nothing may be acknowledged yet
    feed(proc, [flow("b", T0 + 4.0)], first_offset=3)  # b closes bins and is stored
    assert "b" in proc.store
    assert "a" not in proc.store
    assert proc.safe_offset(0) == 0  # a's first record still holds it
    proc.persist_before(0, 1)  # links pending since before offset 1: a
    proc.store_states(proc.drain(1000.0))
    assert proc.stored("a")["last_offset"] == 2
    assert proc.safe_offset(0) == 4  # b's record at 3 is in the store with b
    assert proc.safe_offset(1) is None  # nothing seen of partition 1


def test_a_checkpoint_stores_pending_links_without_publishing_their_state():
    proc = processor()
    feed(proc, [flow("a", T0 + 0.5), flow("a", T0 + 0.7)])  # no bin closed
    out = persist(proc)
    assert proc.stored("a")["last_offset"] == 1
    assert out.link_states == []  # nothing the API does not know: no bin closed
    assert (sorted(out.states), out.links_stored) == (["a", "partition 0"], 1)
    assert proc.safe_offset(0) == 2
    out = feed(proc, [flow("a", T0 + 4.0)], first_offset=2)[-1]  # closes bins: published
    assert [k for k, _ in out.link_states] == [b"a"]


def test_a_batch_of_messages_gives_what_the_messages_give_one_by_one():
    records = [flow(link, T0 + k * 0.3, 10 + k) for k in range(40) for link in ("a", "b")]
    one_by_one = processor()
    outs = feed(one_by_one, records)
    batched = processor()
    for offset, (key, value) in enumerate(records):
        batched.on_flow(key, value, partition=0, offset=offset, timestamp_ms=None, now_s=1000.0)
    out = batched.drain(1000.0)
    assert [w.model_dump() for w in windows([out])] == [
        w.model_dump() for w in sorted(windows(outs), key=lambda w: (w.link, w.bin_start_s))
    ]
    assert out.bins_closed == sum(o.bins_closed for o in outs) > 0


def test_a_silent_link_closes_its_bins_on_ticks_once_idle():
    # one record at T0+0.5, processed at wall 1000; ticks at 1001 (not idle yet) and 1004
    proc = processor()
    feed(proc, [flow("a", T0 + 0.5, 10)], now_s=1000.0)
    assert tick(proc, now_s=1001.0).windows == []
    out = tick(proc, now_s=1004.0)
    # event clock = T0+0.5 + 4 s of quiet = T0+4.5; minus lateness 2 -> bins 0 and 1 close
    assert [(w.bin_start_s, w.bytes) for w in windows([out])] == [(T0, 10), (T0 + 1, 0)]


def test_ticks_close_nothing_while_the_partition_has_a_backlog():
    proc = processor()
    feed(proc, [flow("a", T0 + 0.5, 10)], now_s=1000.0)
    assert tick(proc, now_s=1010.0, caught_up=False).windows == []
    assert [w.bytes for w in windows([tick(proc, now_s=1010.0)])][:1] == [10]


def test_silence_while_ticks_stopped_is_not_idle_time():
    # Kafka was down from 1001 to 1050: no tick came, and producers held their records
    proc = processor()  # idle close after 3 s; a tick gap over 5 s; 10 s of grace
    feed(proc, [flow("a", T0 + 0.5, 10)], now_s=1000.0)
    assert tick(proc, now_s=1001.0).windows == []
    # from 1050 a tick a second: 49 s without one, so silence counts from 1060 on
    assert [tick(proc, float(now)).windows for now in range(1050, 1063)] == [[]] * 13
    # what the producer held arrives: in time, nothing late
    (out,) = feed(proc, [flow("a", T0 + 1.5, 20)], first_offset=1, now_s=1063.0)
    assert out.deadletters == []
    closed = [windows([tick(proc, float(now))]) for now in range(1064, 1068)]
    # at 1066, idle 3 s: event clock 1.5 + 3 - 2 s lateness = 2.5, so bins 0 and 1 close
    assert [len(w) for w in closed] == [0, 0, 2, 1]
    assert [(w.bin_start_s - T0, w.bytes) for w in closed[2]] == [(0, 10), (1, 20)]


def test_one_link_clock_never_closes_another_links_bins():
    # b runs 60 s of event time behind a, on the same partition; both idle for 4 s
    proc = processor()
    feed(proc, [flow("a", T0 + 60.5), flow("b", T0 + 0.5)], now_s=1000.0)
    out = tick(proc, now_s=1004.0)
    b_bins = [w.bin_start_s - T0 for w in windows([out]) if w.link == "b"]
    assert b_bins == [0, 1]  # b's own clock: 0.5 + 4 s idle - 2 s lateness = 2.5
    feed(proc, [flow("b", T0 + 3.5, 7)], first_offset=2, now_s=1004.0)
    assert proc.stored("b")["bins"]["late_records"] == 0


def test_state_survives_a_restart_through_the_store():
    store: dict = {}
    first = processor(store)
    feed(first, [flow("a", T0 + 0.5, 10), flow("a", T0 + 1.5, 20)])
    persist(first)
    second = processor(store)  # a new worker with the recovered table
    outs = feed(second, [flow("a", T0 + 0.5, 10)], first_offset=0)  # redelivered
    assert outs[0].duplicates == 1
    outs = feed(second, [flow("a", T0 + 4.0, 1)], first_offset=2)
    assert [(w.bin_start_s - T0, w.bytes) for w in windows(outs)] == [(0, 10), (1, 20)]


def test_records_not_stored_before_a_crash_are_read_again_and_counted_once():
    records = [flow("a", T0 + 0.5, 10), flow("a", T0 + 1.5, 20), flow("a", T0 + 4.0, 1)]
    store: dict = {}
    first = processor(store)
    feed(first, records[:2])  # then it dies: nothing was stored, nothing acknowledged
    assert store == {}
    assert first.safe_offset(0) == 0
    second = processor(store)
    outs = feed(second, records)  # Kafka delivers again from the safe offset, 0
    assert sum(o.duplicates for o in outs) == 0
    assert [(w.bin_start_s - T0, w.bytes) for w in windows(outs)] == [(0, 10), (1, 20)]


def test_after_a_restart_ticks_still_close_links_that_send_nothing():
    store: dict = {}
    first = processor(store)
    feed(first, [flow("a", T0 + 0.5, 10)], now_s=1000.0)
    persist(first)
    revived = processor(store)
    assert tick(revived, now_s=2000.0).windows == []  # idle time counts from the restart
    out = tick(revived, now_s=2004.0)
    assert [w.bytes for w in windows([out])][:1] == [10]


def test_ticks_pile_up_without_being_lost_or_repeated():
    from streams.app import _tick_is_stale

    def sent(at: float) -> bytes:
        return json.dumps({"wall_s": at}).encode()

    # a worker busy for 8 s still handles a tick sent 8 s ago
    assert not _tick_is_stale(sent(992.0), now_s=1000.0, last_handled_s=990.0, interval_s=1.0)
    # but not a second one in the same half interval: the backlog collapses
    assert _tick_is_stale(sent(993.0), now_s=1000.2, last_handled_s=1000.0, interval_s=1.0)
    # ticks left over from before a restart are dropped, and garbage too
    assert _tick_is_stale(sent(900.0), now_s=1000.0, last_handled_s=0.0, interval_s=1.0)
    assert _tick_is_stale(b"{", now_s=1000.0, last_handled_s=0.0, interval_s=1.0)


class ByPort:
    """A stand-in classifier with the interface the processor needs: DNS by port, else web."""

    version = "by-port-1"

    def classify_inputs(self, inputs):
        return [("dns" if port == 53 else "web", 0.9) for port in inputs["dport"].tolist()]


def test_flows_are_classified_and_bins_carry_the_class_mix():
    proc = processor(config=BinConfig.of(1.0, 0.0, 10), classifier=ByPort())
    records = [
        (
            b"a",
            json.dumps(
                {"link": "a", "ts": T0 + 0.1, "bytes": 300, "packets": 2, "dport": 53}
            ).encode(),
        ),
        (
            b"a",
            json.dumps(
                {"link": "a", "ts": T0 + 0.2, "bytes": 900, "packets": 3, "dport": 443}
            ).encode(),
        ),
        (b"a", json.dumps({"link": "a", "ts": T0 + 1.5, "bytes": 10, "packets": 1}).encode()),
    ]
    outs = feed(proc, records)
    classes = [json.loads(v) for o in outs for _, v in o.classifications]
    assert [(c["cls"], c["model_version"]) for c in classes] == [
        ("dns", "by-port-1"),
        ("web", "by-port-1"),
        ("web", "by-port-1"),
    ]
    [first] = windows(outs)
    assert {c.value: (m.bytes, m.flows) for c, m in first.class_mix.items()} == {
        "dns": (300, 1),
        "web": (900, 1),
    }


def test_a_snapshot_holds_what_its_last_offset_held_while_later_flows_come():
    """The worker stores a drain's snapshots after awaiting the producer, while the reader
    goes on handing flows to the processor: those must not reach the snapshot."""
    proc = processor(config=BinConfig.of(1.0, 0.0, 10), classifier=ByPort())
    dns = {"link": "a", "bytes": 300, "packets": 2, "dport": 53}
    proc.on_flow(b"a", json.dumps({**dns, "ts": T0 + 0.1}).encode(), **at(0))
    proc.on_flow(b"a", json.dumps({**dns, "ts": T0 + 1.1}).encode(), **at(1))  # closes bin 0
    _, written = proc.drain(1000.0).states["a"]
    proc.on_flow(b"a", json.dumps({**dns, "ts": T0 + 1.2}).encode(), **at(2))  # same open bin
    snapshot = json.loads(written)
    [(_, _, _, flows, _, classes)] = snapshot["bins"]["open"]
    assert (snapshot["last_offset"], flows, classes) == (1, 1, {"dns": [300, 1]})


def at(offset: int) -> dict:
    return {"partition": 0, "offset": offset, "timestamp_ms": None, "now_s": 1000.0}


def expiring_processor(store: dict, expire_after_s: float) -> LinkProcessor:
    """Bins of 1 s, no lateness, links expiring after ``expire_after_s`` of silence."""
    return processor(store, BinConfig.of(1.0, 0.0, 2), expire_after_s=expire_after_s)


def test_a_link_silent_for_the_expiry_time_is_forgotten_and_starts_afresh():
    store: dict = {}
    proc = expiring_processor(store, expire_after_s=60.0)
    feed(proc, [flow("a", T0 + 0.5, 100), flow("b", T0 + 0.5, 100)], now_s=1000.0)
    feed(proc, [flow("b", T0 + 40.5, 100)], first_offset=2, now_s=1040.0)
    # a tick a second: a closes its bins, its window turns all zeros, then it is forgotten
    expiring = [out for now in range(1001, 1071) if (out := tick(proc, float(now))).expired]
    assert [out.expired for out in expiring] == [{"a": 0}]
    assert (b"a", None) in expiring[0].link_states  # a tombstone: the API forgets it too
    assert "a" not in store
    assert "b" in store
    assert proc.links_tracked == 1
    feed(proc, [flow("a", T0 + 100.5, 7)], first_offset=3, now_s=1100.0)
    persist(proc, now_s=1100.0)
    fresh = proc.stored("a")["bins"]
    assert (fresh["bins_closed"], fresh["total_bytes"]) == (0, 0)  # afresh: old totals gone


def test_a_transactional_checkpoint_stores_the_next_offset_of_every_partition_handled():
    # offsets 0, 1: a record of link a (stored), then a bad record (nothing to store)
    proc = processor()
    feed(proc, [flow("a", T0 + 0.5)], partition=0)
    persist(proc, partition=0)
    proc.on_flow(b"x", b"not json", partition=0, offset=1, timestamp_ms=None, now_s=1000.0)
    assert "partition 0" not in proc.drain(1000.0).states  # no link stored: no marker
    proc.on_flow(b"x", b"not json", partition=0, offset=2, timestamp_ms=None, now_s=1000.0)
    marked = proc.drain(1000.0, mark_all=True).states
    assert marked["partition 0"] == (0, b'{"partition":0,"next_offset":3}')
    assert proc.partition_of("a") == 0
    assert proc.partition_of("b") is None


def test_where_kafka_starts_a_partition_is_expected_when_no_marker_says_more():
    # no marker: before start_from nothing is expected, so any first offset would pass
    proc = processor()
    assert not proc.start_known(0)
    assert proc.expected_offset(0) is None
    proc.start_from(0, 40)  # committed at 40: a first message at 57 means 40 to 56 skipped
    assert proc.start_known(0)
    assert proc.expected_offset(0) == 40
    # a marker ahead of the committed offset wins: records below it are stored already
    stored = {"partition 1": b'{"partition": 1, "next_offset": 90}'}  # as the table holds it
    proc = processor(stored)
    proc.start_from(1, 70)
    assert proc.expected_offset(1) == 90
    # dead letters move the committed offset but not the marker: the committed one wins
    proc.start_from(2, None)  # the broker could not say
    assert proc.start_known(2)
    assert proc.expected_offset(2) is None
    stored["partition 3"] = {"partition": 3, "next_offset": 10}
    proc.start_from(3, 25)
    assert proc.expected_offset(3) == 25
    # handling a message makes the start known; a revoke forgets it
    feed(proc, [flow("a", T0)], partition=4, first_offset=7)
    assert proc.start_known(4)
    assert proc.expected_offset(4) == 8
    proc.forget_partitions()
    assert not proc.start_known(0)
    assert not proc.start_known(4)


def test_a_link_that_expires_before_a_checkpoint_stored_it_is_deleted_not_stored():
    store: dict = {}
    proc = expiring_processor(store, expire_after_s=10.0)
    proc.on_flow(*flow("a", T0 + 0.5), partition=0, offset=0, timestamp_ms=None, now_s=1000.0)
    proc.persist_before(0, 1)  # a checkpoint: a, with its open bin, stored
    proc.store_states(proc.drain(1000.0))
    assert proc.stored("a") is not None
    expired = None
    for now in range(1001, 1030):  # ticks between checkpoints: nothing stored meanwhile
        proc.on_tick(0, float(now), caught_up=True)
        out = proc.drain(float(now), store=False)
        if out.expired:
            expired = out
            break
        assert [name for name, (_, value) in out.states.items() if value is not None] == []
    assert expired is not None
    assert expired.states["a"] == (0, None)  # deleted, although its closed bins were unstored
    proc.store_states(expired)
    proc.store_states(proc.drain(1030.0))  # the next checkpoint has nothing of a to store
    assert "a" not in store
    assert proc.safe_offset(0) == 1


class NoReads(MutableMapping):
    """A store that refuses to be read, a mapping as Faust's tables are (their ``pop``
    reads the value first: from RocksDB, through its block cache)."""

    def __init__(self, data: dict[str, bytes]) -> None:
        self.data = data

    def __getitem__(self, key: str) -> bytes:
        raise AssertionError(f"read {key!r}")

    def __setitem__(self, key: str, value: bytes) -> None:
        self.data[key] = value

    def __delitem__(self, key: str) -> None:
        del self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def test_an_expired_links_state_is_deleted_without_being_read():
    store = NoReads({"a": b"{}", "b": b"{}"})
    write_states(store, [("a", None), ("c", None), ("d", b"{}")])  # c: never stored
    assert list(store) == ["b", "d"]
    # and the processor's own writes go the same way
    out = Outputs()
    out.states["b"] = (0, None)
    processor(store).store_states(out)
    assert list(store) == ["d"]

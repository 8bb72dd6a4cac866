"""Bad input at volume: a hypothesis-built corpus of malformed flow records, about one
in ten among good ones, through a real broker and a real worker process.

The worker must keep running; every bad record must be in the dead-letter topic,
once, with the reason its kind calls for; every good record must be counted:
the links' final states and their windows add up to the good records exactly.

What the contract says for each kind (streams/decode.py, streams/schemas.py):
broken or non-object JSON and tombstones are ``json``; invalid UTF-8 is
``encoding``; wrong types, negative or enormous counts, unknown fields and
timestamps from 2100 on are ``schema``; an event time more than an hour ahead
of the worker's clock (2030 to 2099) is ``future``; a record from 1970 is valid
but, on a link already past it, ``late``; a missing key or one that is not the
record's link is ``key``; more than 64 KiB is ``too_large``.
"""

import asyncio
import base64
import json
import random
import string
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from streams.decode import MAX_FUTURE_S, MAX_RECORD_BYTES
from streams.schemas import MAX_BYTES, MAX_PACKETS, MAX_TS_S, FlowRecord, RejectReason
from streams.topics import Topics
from tests.e2e.test_classification import worker_env
from tests.helpers import json_values, linkcast_process, read_topic, run_linkcast, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

BASE_S = 1_767_225_600.0  # 2026-01-01
LINKS = [f"edge-{i}" for i in range(6)]
STEP_S = 0.01  # event time between two good records (of any link)
PROCESSING_TIMEOUT_S = 150

Bad = tuple[bytes | None, bytes | None, RejectReason]
SCHEMA = RejectReason.SCHEMA


def _body(link: str, ts: float, /, **extra: Any) -> dict[str, Any]:
    return {"link": link, "ts": ts, "bytes": 1500, "packets": 2, **extra}


def _encode(body: Any) -> bytes:
    return json.dumps(body).encode()


def _not_a_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return True
    return False


links = st.sampled_from(LINKS)
event_times = st.floats(BASE_S, BASE_S + 20, allow_nan=False)
wrong_values = st.one_of(
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(string.ascii_letters, max_size=3), st.integers(), max_size=2),
)
words = st.text(string.ascii_letters, min_size=1, max_size=12).filter(_not_a_number)


@st.composite
def broken_json(draw: st.DrawFn) -> Bad:
    link = draw(links)
    whole = _encode(_body(link, draw(event_times)))
    return link.encode(), whole[: draw(st.integers(0, len(whole) - 1))], RejectReason.JSON


@st.composite
def not_an_object(draw: st.DrawFn) -> Bad:
    body = draw(st.one_of(st.none(), st.integers(), words, st.lists(st.integers(), max_size=4)))
    return draw(links).encode(), _encode(body), RejectReason.JSON


@st.composite
def wrong_type(draw: st.DrawFn) -> Bad:
    link = draw(links)
    field = draw(st.sampled_from(["link", "ts", "bytes", "packets", "sport", "proto", "src"]))
    numeric = field not in {"link", "src"}
    value = draw(st.one_of(wrong_values, words) if numeric else wrong_values)
    return link.encode(), _encode(_body(link, draw(event_times), **{field: value})), SCHEMA


@st.composite
def bad_count(draw: st.DrawFn) -> Bad:
    link = draw(links)
    field, value = draw(
        st.one_of(
            st.tuples(st.just("bytes"), st.integers(max_value=-1)),
            st.tuples(st.just("packets"), st.integers(max_value=0)),
            st.tuples(st.just("bytes"), st.integers(MAX_BYTES + 1, 10**40)),
            st.tuples(st.just("packets"), st.integers(MAX_PACKETS + 1, 10**40)),
            st.tuples(st.just("syn_count"), st.integers(max_value=-1)),
        )
    )
    return link.encode(), _encode(_body(link, draw(event_times), **{field: value})), SCHEMA


@st.composite
def unknown_field(draw: st.DrawFn) -> Bad:
    link = draw(links)
    name = draw(
        st.text(string.ascii_lowercase + "_", min_size=1, max_size=16).filter(
            lambda n: n not in FlowRecord.model_fields
        )
    )
    return link.encode(), _encode(_body(link, draw(event_times), **{name: 1})), SCHEMA


@st.composite
def bad_encoding(draw: st.DrawFn) -> Bad:
    link = draw(links)
    whole = _encode(_body(link, draw(event_times)))
    at = draw(st.integers(0, len(whole)))
    junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xe2\x82"]))
    return link.encode(), whole[:at] + junk + whole[at:], RejectReason.ENCODING


@st.composite
def oversized(draw: st.DrawFn) -> Bad:
    link = draw(links)
    pad = "x" * draw(st.integers(MAX_RECORD_BYTES, 3 * MAX_RECORD_BYTES))
    return link.encode(), _encode(_body(link, BASE_S + 1, pad=pad)), RejectReason.TOO_LARGE


@st.composite
def from_1970(draw: st.DrawFn) -> Bad:
    link = draw(links)  # every link has good records before any bad one: this is late
    ts = draw(st.floats(0, 365 * 86400, allow_nan=False))
    return link.encode(), _encode(_body(link, ts)), RejectReason.LATE


@st.composite
def from_the_future(draw: st.DrawFn) -> Bad:
    link = draw(links)
    soon = time.time() + 2 * MAX_FUTURE_S  # still ahead when the worker reads it
    ts, reason = draw(
        st.one_of(
            st.tuples(st.floats(soon, MAX_TS_S, exclude_max=True), st.just(RejectReason.FUTURE)),
            st.tuples(st.floats(MAX_TS_S, 1e12), st.just(RejectReason.SCHEMA)),
        )
    )
    return link.encode(), _encode(_body(link, ts)), reason


@st.composite
def wrong_key(draw: st.DrawFn) -> Bad:
    link = draw(links)
    key = draw(
        st.one_of(
            st.none(),
            st.sampled_from(LINKS).filter(lambda k: k != link).map(str.encode),
            st.binary(max_size=20).filter(lambda k: k != link.encode()),
        )
    )
    return key, _encode(_body(link, draw(event_times))), RejectReason.KEY


@st.composite
def tombstone(draw: st.DrawFn) -> Bad:
    return draw(links).encode(), None, RejectReason.JSON


bad_records = st.one_of(
    broken_json(),
    not_an_object(),
    wrong_type(),
    bad_count(),
    unknown_field(),
    bad_encoding(),
    oversized(),
    from_1970(),
    from_the_future(),
    wrong_key(),
    tombstone(),
)


def draw_bad_corpus() -> list[Bad]:
    """A few hundred malformed records from hypothesis, the same on every run."""
    corpus: list[Bad] = []

    @seed(8)
    @settings(
        max_examples=10,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(bad_records, min_size=20, max_size=40))
    def collect(batch: list[Bad]) -> None:
        corpus.extend(batch)

    collect()
    return corpus


def good_corpus(n: int) -> list[FlowRecord]:
    """``n`` valid records over the links, in event-time order, each link's first among them."""
    rng = random.Random(8)
    return [
        FlowRecord(
            link=LINKS[i] if i < len(LINKS) else rng.choice(LINKS),
            ts=BASE_S + i * STEP_S,
            bytes=rng.randint(0, 1_000_000),
            packets=rng.randint(1, 1000),
        )
        for i in range(n)
    ]


async def publish(bootstrap: str, topic: str, good: list[FlowRecord], bad: list[Bad]) -> None:
    """Good records with their event time as timestamp; after the first hundred,
    a bad one after every nine good ones (bad ones stamped now)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_request_size=1_000_000, linger_ms=5
    )
    await producer.start()
    try:
        sent = []
        pending = list(bad)
        for i, record in enumerate(good):
            sent.append(
                await producer.send(
                    topic,
                    record.model_dump_json().encode(),
                    key=record.link.encode(),
                    timestamp_ms=round(record.ts * 1000),
                )
            )
            if i >= 100 and i % 9 == 0 and pending:
                key, value, _ = pending.pop()
                sent.append(await producer.send(topic, value, key=key))
        assert not pending, "the good records were too few to carry every bad one"
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def link_state_totals(bootstrap: str, topic: str) -> dict[str, tuple[int, int, int]]:
    """The newest state of each link (partition and offset order), as its totals."""
    latest: dict[str, dict[str, Any]] = {}
    for m in read_topic(bootstrap, topic):
        if m.value is not None:
            state = json.loads(m.value)
            latest[state["link"]] = state
    return {
        link: (s["total_bytes"], s["total_packets"], s["total_flows"]) for link, s in latest.items()
    }


def window_totals(bootstrap: str, topic: str) -> dict[str, tuple[int, int, int]]:
    totals: dict[str, tuple[int, int, int]] = {}
    for w in json_values(read_topic(bootstrap, topic)):
        b, p, f = totals.get(w["link"], (0, 0, 0))
        totals[w["link"]] = (b + w["bytes"], p + w["packets"], f + w["flows"])
    return totals


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def test_bad_records_at_ten_percent_are_dead_lettered_and_good_ones_all_counted(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
):
    bad = draw_bad_corpus()
    good = good_corpus(9 * len(bad) + 200)
    kinds = Counter(reason.value for _, _, reason in bad)
    assert set(kinds) == {r.value for r in RejectReason}, f"the corpus lacks a kind: {kinds}"
    expected: dict[str, tuple[int, int, int]] = {}
    for r in good:
        b, p, f = expected.get(r.link, (0, 0, 0))
        expected[r.link] = (b + r.bytes, p + r.packets, f + 1)
    env = worker_env(kafka_bootstrap, topic_prefix, tmp_path)
    env["LINKCAST_FORECAST"] = "false"  # event time spans seconds: no forecast is due anyway
    topics = Topics(topic_prefix)
    assert run_linkcast(["topics", "create"], env).returncode == 0

    started = time.monotonic()
    log = tmp_path / "worker.log"
    with linkcast_process(["worker"], env, log) as worker:
        asyncio.run(publish(kafka_bootstrap, topics.flows, good, bad))
        letters = wait_until(
            lambda: (
                (v := json_values(read_topic(kafka_bootstrap, topics.deadletter)))
                and len(v) >= len(bad)
                and v
            ),
            PROCESSING_TIMEOUT_S,
            f"{len(bad)} dead letters",
        )
        wait_until(
            lambda: link_state_totals(kafka_bootstrap, topics.link_state) == expected,
            PROCESSING_TIMEOUT_S,
            "the links' states to count every good record",
        )
        assert worker.poll() is None, "the worker stopped on bad input"
    elapsed = time.monotonic() - started
    print(f"{len(good)} good and {len(bad)} bad records ({dict(kinds)}) handled in {elapsed:.1f} s")

    assert window_totals(kafka_bootstrap, topics.windows) == expected
    got = Counter((letter["key_b64"], letter["raw_b64"], letter["reason"]) for letter in letters)
    wanted = Counter((_b64(k), _b64(v or b""), reason.value) for k, v, reason in bad)
    assert got == wanted, {"missing": wanted - got, "unexpected": got - wanted}
    assert all(letter["detail"] for letter in letters)
    assert "Traceback" not in log.read_text(errors="replace")

"""Real worker processes for the semantics and scale-out tests, and what they publish.

The tests here hand-write flows with chosen event times, publish them, run
`linkcast worker` processes with fast settings, and read back the windows,
link-state and dead-letter topics, the worker's changelog and the consumer
group. Expected figures are computed from the published records alone, never
from the code under test.
"""

import asyncio
import json
import math
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import CoordinatorLoadInProgressError, GroupCoordinatorNotAvailableError

from streams.schemas import FlowRecord
from streams.settings import StreamSettings
from streams.topics import Topics
from tests.e2e.test_classification import worker_env
from tests.e2e.test_pipeline import wait_for_totals
from tests.helpers import read_topic, wait_until

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a whole number of bins
PROCESSING_FIELDS = {"emitted_at_s", "latency_s"}  # the only fields that differ on a re-run


def fast_env(bootstrap: str, prefix: str, home: Path, **settings: str) -> dict[str, str]:
    """A worker of its own with 1 s bins, quick idle closing and no models.

    ``settings`` override or add LINKCAST_<NAME> variables (``partitions="1"``).
    """
    env = worker_env(bootstrap, prefix, home) | {
        "LINKCAST_BIN_S": "1",
        "LINKCAST_LATENESS_S": "2",
        "LINKCAST_WINDOW_BINS": "3",
        "LINKCAST_IDLE_CLOSE_AFTER_S": "2",
        "LINKCAST_TICK_INTERVAL_S": "0.5",
        "LINKCAST_CLASSIFY": "false",
        "LINKCAST_FORECAST": "false",
        "LINKCAST_SESSION_TIMEOUT_S": "8",  # a killed worker's partitions move on in 8 s
    }
    return env | {f"LINKCAST_{k.upper()}": v for k, v in settings.items()}


def flow(link: str, ts: float, nbytes: int, packets: int = 1) -> FlowRecord:
    return FlowRecord(link=link, ts=ts, bytes=nbytes, packets=packets)


# ---- publishing -------------------------------------------------------------


def publish(bootstrap: str, topic: str, records: Iterable[FlowRecord]) -> None:
    """Publish ``records`` in order, keyed by link, stamped with their event time."""
    asyncio.run(_publish(bootstrap, topic, list(records)))


async def _publish(bootstrap: str, topic: str, records: list[FlowRecord]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        await _send(producer, topic, records)
    finally:
        await producer.stop()


async def _send(producer: AIOKafkaProducer, topic: str, records: list[FlowRecord]) -> None:
    """Send ``records`` and wait until the broker has them all."""
    sent = [
        await producer.send(
            topic,
            r.model_dump_json(exclude_none=True).encode(),
            key=r.link.encode(),
            timestamp_ms=round(r.ts * 1000),
        )
        for r in records
    ]
    await asyncio.gather(*sent)


class PacedPublisher:
    """Publish records in a background thread at ``rate`` records/s, in order.

    ``start`` it, or use it as a context manager; ``published`` counts the records the broker has
    acknowledged; ``join`` waits for the last one and raises what went wrong.
    """

    def __init__(self, bootstrap: str, topic: str, records: list[FlowRecord], rate: float):
        self.bootstrap, self.topic, self.records, self.rate = bootstrap, topic, records, rate
        self.published = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="paced-publisher", daemon=True)

    def start(self) -> "PacedPublisher":
        self._thread.start()
        return self

    def __enter__(self) -> "PacedPublisher":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self._thread.join(timeout=300)

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout=timeout_s)
        assert not self._thread.is_alive(), f"publishing took longer than {timeout_s} s"
        if self.error is not None:
            raise AssertionError(f"publishing failed: {self.error!r}") from self.error
        assert self.published == len(self.records)

    def _run(self) -> None:
        try:
            asyncio.run(self._publish())
        except BaseException as exc:  # handed to the test thread by join()
            self.error = exc

    async def _publish(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            started = time.monotonic()
            batch = max(1, round(self.rate / 20))  # 20 sends a second
            for first in range(0, len(self.records), batch):
                pause = started + first / self.rate - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                chunk = self.records[first : first + batch]
                await _send(producer, self.topic, chunk)
                self.published += len(chunk)
        finally:
            await producer.stop()


@dataclass
class Expected:
    """What the published records add up to: per link and per (link, bin start)."""

    bin_s: float = 1.0
    totals: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # bytes, packets, flows
    bins: dict[tuple[str, float], tuple[int, int, int]] = field(default_factory=dict)

    def add(self, records: Iterable[FlowRecord]) -> None:
        for r in records:
            b, p, f = self.totals.get(r.link, (0, 0, 0))
            self.totals[r.link] = (b + r.bytes, p + r.packets, f + 1)
            key = (r.link, math.floor(r.ts / self.bin_s) * self.bin_s)
            b, p, f = self.bins.get(key, (0, 0, 0))
            self.bins[key] = (b + r.bytes, p + r.packets, f + 1)


# ---- reading what the workers published ----------------------------------------


def latest_by_key(messages: list[Any]) -> dict[bytes, Any]:
    """The newest value of every key, as a compacted topic keeps it (None: a tombstone)."""
    latest: dict[bytes, Any] = {}
    for m in sorted(messages, key=lambda m: (m.partition, m.offset)):
        latest[m.key] = None if m.value is None else json.loads(m.value)
    return latest


def state_totals(
    bootstrap: str, topic: str, *, committed_only: bool = False
) -> dict[str, tuple[int, int, int]]:
    """Each link's totals in its newest link-state record (links tombstoned are left out);
    ``committed_only``: as a read_committed consumer sees them."""
    messages = read_topic(bootstrap, topic, committed_only=committed_only)
    return {
        key.decode(): (s["total_bytes"], s["total_packets"], s["total_flows"])
        for key, s in latest_by_key(messages).items()
        if s is not None
    }


def wait_for_state_totals(
    bootstrap: str,
    topics: Topics,
    expected: Expected,
    proc: "subprocess.Popen[bytes]",
    log: Path,
    what: str,
    timeout_s: float = 60,
    *,
    committed_only: bool = False,
) -> None:
    """Wait until every link's newest link-state totals are the published ones.

    On timeout the message lists (expected, got) for each link that differs, and the
    worker's warnings and errors.
    """
    try:
        wait_for_totals(
            expected.totals,
            lambda: (
                alive(proc, log)
                and state_totals(bootstrap, topics.link_state, committed_only=committed_only)
            ),
            timeout_s,
            what,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nthe worker's warnings:\n{warnings_in(log)}") from None


def warnings_in(log: Path, lines: int = 30) -> str:
    """The last ``lines`` warnings and errors of a worker's log."""
    found = [
        line
        for line in log.read_text(errors="replace").splitlines()
        if "[WARNING]" in line or "[ERROR]" in line or "[CRITICAL]" in line
    ]
    return "\n".join(found[-lines:]) or "(none)"


def content(window: dict[str, Any]) -> str:
    """A window record without its processing-time fields, comparable across re-emissions."""
    return json.dumps(
        {k: v for k, v in window.items() if k not in PROCESSING_FIELDS}, sort_keys=True
    )


@dataclass
class WindowCheck:
    """The windows topic against what was published."""

    emitted: Counter[tuple[str, float]]  # how often each (link, bin start) was published
    versions: dict[tuple[str, float], set[str]]  # the distinct contents of each bin
    wrong: dict[tuple[str, float], tuple[Any, Any]]  # (expected, got) of bins with traffic

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.emitted.values())

    @property
    def conflicting(self) -> dict[tuple[str, float], set[str]]:
        return {k: v for k, v in self.versions.items() if len(v) > 1}


def check_windows(windows: list[dict[str, Any]], expected: Expected) -> WindowCheck:
    """Compare every window record with the published records' bins.

    A bin with traffic must carry exactly the bytes, packets and flows
    published into it; any other bin of a link must be empty.
    """
    emitted: Counter[tuple[str, float]] = Counter()
    versions: dict[tuple[str, float], set[str]] = {}
    got: dict[tuple[str, float], tuple[int, int, int]] = {}
    for w in windows:
        key = (w["link"], w["bin_start_s"])
        emitted[key] += 1
        versions.setdefault(key, set()).add(content(w))
        got[key] = (w["bytes"], w["packets"], w["flows"])
    wrong = {
        k: (expected.bins.get(k), got.get(k))
        for k in {*expected.bins, *(k for k, v in got.items() if v != (0, 0, 0))}
        if expected.bins.get(k) != got.get(k)
    }
    return WindowCheck(emitted, versions, wrong)


def assert_each_record_counted_once(
    bootstrap: str, topics: Topics, expected: Expected, *, committed_only: bool = False
) -> WindowCheck:
    """Check the end of a run in which every published record's bin has closed.

    Every link's newest link-state totals equal what was published; each bin
    with traffic has exactly its records and every other bin is empty; a bin
    published more than once (at-least-once, after a kill) has one content;
    each link's ``bins_closed`` is the number of distinct bins published for
    it; nothing was late or dead-lettered. ``committed_only``: read every topic as a
    read_committed consumer does.
    """
    windows = window_values(bootstrap, topics.windows, committed_only=committed_only)
    states = latest_by_key(read_topic(bootstrap, topics.link_state, committed_only=committed_only))
    totals = {
        k.decode(): (s["total_bytes"], s["total_packets"], s["total_flows"])
        for k, s in states.items()
        if s
    }
    assert totals == expected.totals
    check = check_windows(windows, expected)
    assert check.wrong == {}, "bins lost or counted twice: (expected, got) per (link, bin)"
    assert check.conflicting == {}, "a bin was published twice with different contents"
    distinct = Counter(link for link, _ in check.emitted)
    assert {k.decode(): s["bins_closed"] for k, s in states.items() if s} == distinct
    assert {k.decode(): s["late_records"] for k, s in states.items() if s} == dict.fromkeys(
        distinct, 0
    )
    assert read_topic(bootstrap, topics.deadletter, committed_only=committed_only) == []
    return check


def window_values(
    bootstrap: str, topic: str, *, committed_only: bool = False
) -> list[dict[str, Any]]:
    messages = read_topic(bootstrap, topic, timeout_s=30, committed_only=committed_only)
    return [json.loads(m.value) for m in messages]


def table_link(key: bytes) -> str:
    """The link of a table (changelog) or topic key: JSON-encoded in the table, raw on topics."""
    try:
        decoded = json.loads(key)
    except ValueError:
        return key.decode()
    return decoded if isinstance(decoded, str) else key.decode()


def changelog_topics(prefix: str, home: Path) -> list[str]:
    """The changelog topic of every table the worker keeps, named by Faust itself."""
    from streams.app import create_app

    app = create_app(
        StreamSettings(topic_prefix=prefix, data_dir=home, classify=False, forecast=False)
    )
    return sorted(t.changelog_topic.get_topic_name() for t in app.tables.values())


# ---- the consumer group --------------------------------------------------------


def assignment(bootstrap: str, group: str, topic: str) -> dict[str, list[int]] | None:
    """Each member's partitions of ``topic``, or None while the group is rebalancing."""
    return asyncio.run(_assignment(bootstrap, group, topic))


async def _assignment(bootstrap: str, group: str, topic: str) -> dict[str, list[int]] | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
    except (GroupCoordinatorNotAvailableError, CoordinatorLoadInProgressError):
        return None  # the broker is still making its offsets topic
    finally:
        await admin.close()
    [described] = response.groups
    error, _, state, _, _, members = described[:6]
    if error or state != "Stable":
        return None
    owned: dict[str, list[int]] = {}
    for member_id, _client, _host, _metadata, raw in members:
        decoded = ConsumerProtocolMemberAssignment.decode(raw)
        owned[member_id] = sorted(p for t, ps in decoded.assignment if t == topic for p in ps)
    return owned


# With kill -9 the dead member stays in the group until its session times out
# (LINKCAST_SESSION_TIMEOUT_S, 8 s in fast_env); only then are its partitions
# given to the others. The deadline leaves room for a slow machine.
REBALANCE_S = 90


def owners(
    bootstrap: str,
    prefix: str,
    proc: "subprocess.Popen[bytes]",
    log: Path,
    members: int = 1,
    gone: Collection[str] = (),
    reader: str = "faust",
) -> dict[str, list[int]]:
    """Wait until ``members`` workers, none of them ``gone``, share the flows partitions.

    Returns each member's partitions of the flows topic; ``proc`` must stay alive.
    ``reader``: the workers' LINKCAST_FLOWS_READER (``direct``: the group assigns the
    ticks topic, and each worker reads the flows partitions of the same numbers).
    """
    group = StreamSettings(topic_prefix=prefix).app_id
    flows = Topics(prefix).ticks if reader == "direct" else Topics(prefix).flows

    def settled() -> dict[str, list[int]]:  # empty until settled
        alive(proc, log)
        owned = assignment(bootstrap, group, flows)
        if owned is None or len(owned) != members or set(owned) & set(gone):
            return {}
        return owned

    return wait_until(settled, REBALANCE_S, f"{members} live worker(s) to own {flows}")


# ---- worker processes ----------------------------------------------------------


def kill_hard(proc: subprocess.Popen[bytes]) -> float:
    """``kill -9`` the worker: no shutdown, no final commit, no flush. Returns when it died."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    return time.monotonic()


def stop(proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 30) -> int:
    """SIGTERM the worker and wait for its clean exit; return the exit code."""
    proc.terminate()
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(
            f"the worker did not stop within {timeout_s} s of SIGTERM:\n{log.read_text()[-3000:]}"
        ) from None


def alive(proc: subprocess.Popen[bytes], log: Path) -> bool:
    """True while the worker runs; fail with its log's end if it died."""
    assert proc.poll() is None, f"the worker died ({proc.returncode}):\n{log.read_text()[-3000:]}"
    return True

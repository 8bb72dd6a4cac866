"""Records through a real broker, a real worker process and a real API process.

The simulator publishes a known set of records; the per-link byte, packet and
flow totals summed over the windows topic, and those the API reports, must
equal what was published, exactly.
"""

import asyncio
import base64
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from api.auth import hash_secret
from producers.simulator import SimulationConfig, simulate
from streams.schemas import RejectReason
from streams.topics import Topics
from tests.helpers import (
    free_port,
    json_values,
    linkcast_process,
    read_topic,
    run_linkcast,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

PROCESSING_TIMEOUT_S = 120


API_CLIENT, API_SECRET = "e2e", "e2e-secret-of-the-test"


@pytest.fixture
def env(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> dict[str, str]:
    clients = tmp_path / "clients.json"
    clients.write_text(
        json.dumps(
            {
                "clients": [
                    {"id": API_CLIENT, "secret_hash": hash_secret(API_SECRET), "scopes": ["read"]}
                ]
            }
        )
    )
    return {
        "LINKCAST_API_JWT_KEY": "e2e-" + "k" * 40,
        "LINKCAST_API_CLIENTS_FILE": str(clients),
        "LINKCAST_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LINKCAST_TOPIC_PREFIX": topic_prefix,
        "LINKCAST_PARTITIONS": "4",
        "LINKCAST_DATA_DIR": str(tmp_path / "worker-state"),
        "LINKCAST_WORKER_PORT": str(free_port()),
        "LINKCAST_API_PORT": str(free_port()),
    }


def linkcast(args: list[str], env: dict[str, str]) -> str:
    result = run_linkcast(args, env)
    assert result.returncode == 0, (
        f"linkcast {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def window_totals(bootstrap: str, topic: str) -> dict[str, tuple[int, int, int]]:
    totals: dict[str, tuple[int, int, int]] = {}
    for w in json_values(read_topic(bootstrap, topic)):
        b, p, f = totals.get(w["link"], (0, 0, 0))
        totals[w["link"]] = (b + w["bytes"], p + w["packets"], f + w["flows"])
    return totals


def differences(expected: dict, got: dict | None) -> dict:
    """Per link, (expected, got) where they differ; empty when they match."""
    got = got or {}
    return {
        k: (v, got.get(k)) for k, v in {**got, **expected}.items() if got.get(k) != expected.get(k)
    }


def wait_for_totals(
    expected: dict, read: "Callable[[], dict | None]", timeout_s: float, what: str
) -> None:
    seen: list[dict] = [{}]

    def matches() -> bool:
        seen[0] = differences(expected, read())
        return not seen[0]

    try:
        wait_until(matches, timeout_s, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; (expected, got) per differing link: {seen[0]}") from None


def api_totals(base: str) -> dict[str, tuple[int, int, int]] | None:
    try:
        token = httpx.post(
            f"{base}/v1/token",
            data={"grant_type": "client_credentials"},
            auth=(API_CLIENT, API_SECRET),
            timeout=5,
        ).json()["access_token"]
        page = httpx.get(
            f"{base}/v1/links",
            params={"limit": 1000},
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        ).json()
    except (httpx.HTTPError, KeyError):
        return None
    if "links" not in page or any(s["state"] is None for s in page["links"]):
        return None  # a link whose windows came before its first state
    return {
        s["link"]: (
            s["state"]["total_bytes"],
            s["state"]["total_packets"],
            s["state"]["total_flows"],
        )
        for s in page["links"]
    }


def test_windows_and_api_totals_equal_what_the_simulator_published(env, tmp_path):
    config = SimulationConfig(links=6, duration_s=40, rate=150, seed=11)
    expected: dict[str, tuple[int, int, int]] = {}
    for r in simulate(config):
        b, p, f = expected.get(r.link, (0, 0, 0))
        expected[r.link] = (b + r.bytes, p + r.packets, f + 1)
    topics = Topics(env["LINKCAST_TOPIC_PREFIX"])
    bootstrap = env["LINKCAST_KAFKA_BOOTSTRAP"]
    base = f"http://127.0.0.1:{env['LINKCAST_API_PORT']}"

    linkcast(["topics", "create"], env)
    with (
        linkcast_process(["worker"], env, tmp_path / "worker.log") as worker,
        linkcast_process(["api"], env, tmp_path / "api.log") as api,
    ):
        out = linkcast(
            [
                "simulate",
                "--links",
                "6",
                "--duration",
                "40",
                "--rate",
                "150",
                "--seed",
                "11",
                "--max",
            ],
            env,
        )
        assert f"published {sum(f for _, _, f in expected.values())} records" in out

        wait_until(
            lambda: window_totals(bootstrap, topics.windows) == expected,
            PROCESSING_TIMEOUT_S,
            "the windows topic to add up to what was published",
        )
        wait_until(
            lambda: api_totals(base) == expected, 30, "the API to report the published totals"
        )
        assert worker.poll() is None
        assert api.poll() is None

    windows = json_values(read_topic(bootstrap, topics.windows))
    bins = Counter((w["link"], w["bin_start_s"]) for w in windows)
    assert max(bins.values()) == 1, "a bin was published twice"
    for w in windows:
        assert w["bin_end_s"] - w["bin_start_s"] == pytest.approx(1.0)
        assert w["bps"] == pytest.approx(w["bytes"] * 8)
    assert read_topic(bootstrap, topics.deadletter) == []


BAD_RECORDS: list[tuple[bytes | None, bytes, RejectReason]] = [
    (b"link-000", b'{"link": "link-000", "ts": 1767225601.0, "bytes": 10', RejectReason.JSON),
    (b"link-000", b"[1767225601.0, 10, 1]", RejectReason.JSON),
    (
        b"link-000",
        b'{"link": "link-000", "ts": 1767225601.0, "bytes": -5, "packets": 1}',
        RejectReason.SCHEMA,
    ),
    (
        b"link-001",
        b'{"link": "link-001", "ts": 1767225601.0, "bytes": "ten", "packets": 1}',
        RejectReason.SCHEMA,
    ),
    (
        b"link-001",
        b'{"link": "link-001", "ts": 4102444801.0, "bytes": 1, "packets": 1}',
        RejectReason.SCHEMA,
    ),
    (
        b"link-002",
        b'{"link": "link-002", "ts": 1767225601.0, "bytes": 1, "packets": 1, "x": 1}',
        RejectReason.SCHEMA,
    ),
    (
        b"link-002",
        b'{"link": "link-002", "ts": 1767225601.0, "bytes": 1, "packets": 1e30}',
        RejectReason.SCHEMA,
    ),
    (b"link-000", b"\xc3\x28 not utf-8", RejectReason.ENCODING),
    (b"link-000", b'{"pad": "' + b"x" * 70_000 + b'"}', RejectReason.TOO_LARGE),
    (None, b'{"link": "link-001", "ts": 1767225601.0, "bytes": 1, "packets": 1}', RejectReason.KEY),
    (
        b"link-002",
        b'{"link": "link-000", "ts": 1767225601.0, "bytes": 1, "packets": 1}',
        RejectReason.KEY,
    ),
]
LATE = (
    b"link-000",
    b'{"link": "link-000", "ts": 1767225000.0, "bytes": 1, "packets": 1}',
    RejectReason.LATE,
)


async def publish_mixed(bootstrap: str, topic: str, good: list, bad: list) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=200_000)
    await producer.start()
    try:
        every = max(1, len(good) // len(bad))
        for i, record in enumerate(good):
            await producer.send_and_wait(
                topic, record.model_dump_json().encode(), key=record.link.encode()
            )
            if i % every == 0 and i // every < len(bad):
                key, value, _ = bad[i // every]
                await producer.send_and_wait(topic, value, key=key)
        key, value, _ = LATE  # after the good records: its bin has long closed
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def test_bad_records_go_to_the_dead_letter_topic_and_good_ones_are_all_counted(env, tmp_path):
    good = list(simulate(SimulationConfig(links=3, duration_s=20, rate=30, seed=5)))
    expected: dict[str, tuple[int, int, int]] = {}
    for r in good:
        b, p, f = expected.get(r.link, (0, 0, 0))
        expected[r.link] = (b + r.bytes, p + r.packets, f + 1)
    topics = Topics(env["LINKCAST_TOPIC_PREFIX"])
    bootstrap = env["LINKCAST_KAFKA_BOOTSTRAP"]

    linkcast(["topics", "create"], env)
    with linkcast_process(["worker"], env, tmp_path / "worker.log") as worker:
        asyncio.run(publish_mixed(bootstrap, topics.flows, good, BAD_RECORDS))
        wanted = len(BAD_RECORDS) + 1
        letters = wait_until(
            lambda: (
                (v := json_values(read_topic(bootstrap, topics.deadletter)))
                and len(v) >= wanted
                and v
            ),
            PROCESSING_TIMEOUT_S,
            f"{wanted} dead letters",
        )
        wait_for_totals(
            expected,
            lambda: window_totals(bootstrap, topics.windows),
            PROCESSING_TIMEOUT_S,
            "the good records to be counted in the windows",
        )
        assert worker.poll() is None, "the worker died on bad input"

    assert len(letters) == wanted
    by_raw = {base64.b64decode(letter["raw_b64"]): letter for letter in letters}
    for key, value, reason in [*BAD_RECORDS, LATE]:
        letter = by_raw[value]
        assert letter["reason"] == reason.value, (value[:60], letter["detail"])
        assert letter["detail"]
        assert letter["topic"] == topics.flows
        assert letter["offset"] >= 0
        assert (base64.b64decode(letter["key_b64"]) if letter["key_b64"] else None) == key
    flows_messages = read_topic(bootstrap, topics.flows)
    at = {(m.partition, m.offset): m.value for m in flows_messages}
    for letter in letters:  # each letter points back at its source message
        assert at[(letter["partition"], letter["offset"])] == base64.b64decode(letter["raw_b64"])

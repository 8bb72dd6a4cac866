"""Small tools the integration and e2e tests share: waiting, reading topics, running linkcast."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from deploy.processes import stop_process
from streams.admin import partitions_of

T = TypeVar("T")
READ_ATTEMPTS = 5


def wait_until(condition: Callable[[], T], timeout_s: float, what: str, every_s: float = 0.2) -> T:
    """Return the first truthy value of ``condition()``; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: T = condition()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout_s} s waiting for {what}; last value {last!r}"
            )
        time.sleep(every_s)
        last = condition()
    return last


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def read_topic(
    bootstrap: str, topic: str, timeout_s: float = 10.0, *, committed_only: bool = False
) -> list[Any]:
    """Every message of ``topic`` currently in Kafka, in partition then offset order.

    ``committed_only``: read as a ``read_committed`` consumer does, up to each
    partition's last stable offset: messages of aborted transactions are left out,
    and those of open ones are not reached.
    """
    # A broker just restarted (the fault tests) can refuse a request or two: such an
    # error is one Kafka calls retriable, and the read starts again.
    for attempt in range(READ_ATTEMPTS):
        try:
            return asyncio.run(_read_topic(bootstrap, topic, timeout_s, committed_only))
        except KafkaError as exc:
            if not exc.retriable or attempt == READ_ATTEMPTS - 1:
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")


async def _read_topic(
    bootstrap: str, topic: str, timeout_s: float, committed_only: bool = False
) -> list[Any]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        isolation_level="read_committed" if committed_only else "read_uncommitted",
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(await partitions_of(bootstrap, topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        messages: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end in {timeout_s} s")
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                messages.extend(batch)
        return messages
    finally:
        await consumer.stop()


def json_values(messages: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(m.value) for m in messages]


@contextmanager
def linkcast_process(
    args: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``linkcast ARGS`` with ``env`` added, logging to ``log``; stop it on exit."""
    full_env = {**os.environ, **env}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deploy", *args],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        stop_process(proc)


def topic_names(bootstrap: str) -> set[str]:
    """The names of the topics the cluster has now."""
    return asyncio.run(_topic_names(bootstrap))


async def _topic_names(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def run_linkcast(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``linkcast ARGS`` to the end with ``env`` added; its output is captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "deploy", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

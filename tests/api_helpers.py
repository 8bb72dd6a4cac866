"""What the API's integration and e2e tests share: settings for a real API process, tokens,
and publishing output records straight to the broker (as the worker and models will)."""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from api.auth import hash_secret
from tests.helpers import free_port

API_CLIENT, API_SECRET = "reader", "reader-secret-of-the-api-tests"


def api_env(bootstrap: str, prefix: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """LINKCAST_* variables for a production-mode API with one read client, on a free port."""
    clients = tmp_path / "clients.json"
    entry = {"id": API_CLIENT, "secret_hash": hash_secret(API_SECRET, 1000), "scopes": ["read"]}
    clients.write_text(json.dumps({"clients": [entry]}))
    return {
        "LINKCAST_API_JWT_KEY": "api-tests-" + "k" * 40,
        "LINKCAST_API_CLIENTS_FILE": str(clients),
        "LINKCAST_KAFKA_BOOTSTRAP": bootstrap,
        "LINKCAST_TOPIC_PREFIX": prefix,
        "LINKCAST_PARTITIONS": "2",
        "LINKCAST_API_PORT": str(free_port()),
        "LINKCAST_BROKER_CHECK_S": "1",
        **extra,
    }


def base_url(env: dict[str, str]) -> str:
    return f"http://127.0.0.1:{env['LINKCAST_API_PORT']}"


def token(base: str) -> str | None:
    """A read token from the API, or None while it does not answer."""
    try:
        answer = httpx.post(
            f"{base}/v1/token",
            data={"grant_type": "client_credentials"},
            auth=(API_CLIENT, API_SECRET),
            timeout=5,
        )
    except httpx.HTTPError:
        return None
    return answer.json()["access_token"] if answer.status_code == 200 else None


def get_json(base: str, path: str, bearer: str, **params: object) -> object | None:
    """The JSON of a 200 answer, or None for any other answer or none."""
    try:
        answer = httpx.get(
            f"{base}{path}",
            params=params,
            headers={"Authorization": f"Bearer {bearer}"},
            timeout=5,
        )
    except httpx.HTTPError:
        return None
    return answer.json() if answer.status_code == 200 else None


Message = tuple[str, BaseModel | None, str, int | None]  # topic, record, key, timestamp ms


def publish(bootstrap: str, messages: list[Message]) -> None:
    """Send each record (None: a tombstone) keyed by its link, in order, and wait for acks.

    In a thread of its own: a caller may have an event loop running (Playwright's has)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _publish(bootstrap, messages)).result()


async def _publish(bootstrap: str, messages: list[Message]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        pending = [
            await producer.send(
                topic,
                None if record is None else record.model_dump_json().encode(),
                key=key.encode(),
                timestamp_ms=timestamp_ms,
            )
            for topic, record, key, timestamp_ms in messages
        ]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()

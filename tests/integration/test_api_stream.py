"""GET /v1/stream from a real API process following a real broker, with a client that never reads.

The slow client is a plain socket with a small receive buffer that stops
reading after the response headers. The events it does not read fill the TCP
buffers, then its queue, which drops its oldest events. Meanwhile a second
client must get every one of its events, and when the slow client reads
again it is told how many it lost.
"""

import json
import re
import socket
import threading
import time

import httpx
import pytest

from streams.schemas import Alert, WindowRecord
from streams.topics import Topics
from tests.api_helpers import api_env, base_url, get_json, publish, token
from tests.e2e.test_pipeline import linkcast
from tests.helpers import linkcast_process, wait_until
from tests.unit.api.handfed import window

pytestmark = [pytest.mark.kafka]

BULKY_EVIDENCE = {f"feature_{i:04d}": float(i) for i in range(2000)}  # ~45 kB an event


class Reader(threading.Thread):
    """Reads /v1/stream with httpx as fast as it comes, collecting (event, data) pairs."""

    def __init__(self, url: str, bearer: str) -> None:
        super().__init__(daemon=True)
        self.url, self.bearer = url, bearer
        self.events: list[tuple[str, dict]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.bearer}"}
        with httpx.stream("GET", self.url, headers=headers, timeout=30) as answer:
            kind = ""
            for line in answer.iter_lines():
                if self.stop.is_set():
                    return
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    self.events.append((kind, json.loads(line[6:])))

    def windows(self) -> list[float]:
        return [data["bin_end_s"] for kind, data in self.events if kind == "window"]


def stalled_client(port: int, bearer: str) -> socket.socket:
    """A stream client that reads the response headers and then nothing more."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET /v1/stream HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {bearer}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 200"), head
    return sock


def metric(base: str, name: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=5).text
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else -1.0


def test_a_stalled_client_loses_its_oldest_events_and_stalls_no_one_else(
    kafka_bootstrap, topic_prefix, tmp_path
):
    env = api_env(
        kafka_bootstrap,
        topic_prefix,
        tmp_path,
        LINKCAST_SSE_QUEUE_MAX="8",
        LINKCAST_SSE_HEARTBEAT_S="0.5",
    )
    topics = Topics(topic_prefix)
    base = base_url(env)
    linkcast(["topics", "create"], env)
    with linkcast_process(["api"], env, tmp_path / "api.log") as api:
        bearer = wait_until(lambda: token(base), 60, "the API to give a token")
        wait_until(lambda: get_json(base, "/v1/models", bearer), 60, "the view to be ready")
        fast = Reader(f"{base}/v1/stream?link=fast&kind=window", bearer)
        fast.start()
        slow = stalled_client(int(env["LINKCAST_API_PORT"]), bearer)
        try:
            wait_until(lambda: metric(base, "linkcast_api_sse_clients") == 2, 10, "2 clients")
            sent: list[float] = []
            for round_ in range(40):  # bounded: the buffers fill within a few rounds
                bulk = [
                    (
                        topics.alerts,
                        Alert(
                            id=f"bulk-{round_}-{i}",
                            link="bulk",
                            state="cleared",
                            severity="info",
                            reason="padding",
                            evidence=BULKY_EVIDENCE,
                            ts=float(i),
                        ),
                        "bulk",
                        None,
                    )
                    for i in range(40)
                ]
                end = 1000.0 + round_
                fast_window = WindowRecord.model_validate_json(window("fast", end))
                publish(kafka_bootstrap, [*bulk, (topics.windows, fast_window, "fast", None)])
                sent.append(end)
                # The other client gets each of its events while the stalled one sits there.
                wait_until(lambda: fast.windows() == sent, 15, f"window {end} at the fast client")
                if metric(base, "linkcast_api_sse_dropped_events_total") > 0:
                    break
            assert metric(base, "linkcast_api_sse_dropped_events_total") > 0, "nothing dropped"
            assert not [kind for kind, _ in fast.events if kind == "dropped"]
            started = time.monotonic()
            assert get_json(base, "/v1/links/fast", bearer)["window"]["bin_end_s"] == sent[-1]
            assert time.monotonic() - started < 2.0, "the API itself stalled"

            # Reading again, the stalled client is told how many events it lost.
            slow.settimeout(10)
            seen = b""
            deadline = time.monotonic() + 30
            notice = None
            while notice is None and time.monotonic() < deadline:
                seen = seen[-200_000:] + slow.recv(1 << 16)
                notice = re.search(rb"event: dropped\ndata: (\{[^}]*\})", seen)
            assert notice is not None, "the stalled client was never told of its drops"
            told = json.loads(notice.group(1))
            assert told["dropped"] > 0
            assert told["total"] >= told["dropped"]
        finally:
            slow.close()
            fast.stop.set()
        wait_until(lambda: metric(base, "linkcast_api_sse_clients") == 0, 15, "clients to leave")
        assert api.poll() is None

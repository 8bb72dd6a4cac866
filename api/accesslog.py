"""Request ids, request metrics and one JSON access-log line per request, as ASGI middleware.

A request keeps the ``X-Request-ID`` it came with when that is sane (1 to 128
characters of letters, digits and ``._:-``); otherwise it gets a new random
one. Either way the id is echoed in the response's ``X-Request-ID`` header,
put in ``request.state.request_id`` and written in the log line, so one id
follows a request from a proxy through the API's logs. The log line goes to
standard error as one JSON object:

    {"ts": 1767225600.123, "request_id": "...", "method": "GET", "path": "/v1/links/a",
     "route": "/v1/links/{link}", "status": 200, "duration_ms": 0.41, "bytes": 812,
     "client": "127.0.0.1", "client_id": "dashboard"}

``client_id`` is the authenticated client, when a route checked a token. A
streamed answer (``/v1/stream``) is logged when it ends. The line is made
with an f-string and the C JSON string encoder rather than through ``logging``
and ``json.dumps``, which together cost the hot path as much as its answer.
Lines are written in batches, one write for all the lines of up to
``flush_s`` seconds (and at once past 64 KiB, and when the app stops), as a
web server's buffered access log does: a write per line cost a busy API a
fifth of its requests. ``flush_s = 0`` writes each line as it comes.
"""

import itertools
import json
import os
import re
import sys
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import ApiMetrics

_text = json.encoder.encode_basestring_ascii  # the C JSON string encoder

_SANE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED = "<unmatched>"


_PROCESS = os.urandom(6).hex()  # new ids: this process's random prefix and a count
_COUNT = itertools.count(1)


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The incoming X-Request-ID if it is sane, else a new one, unique across processes."""
    for name, value in headers:
        if name == b"x-request-id" and _SANE_ID.match(value):
            return value.decode()
    return f"{_PROCESS}{next(_COUNT):012x}"


FLUSH_BYTES = 1 << 16


class LineBuffer:
    """Lines for standard error, written together every ``flush_s`` seconds or 64 KiB."""

    def __init__(self, flush_s: float) -> None:
        self.flush_s = flush_s
        self._lines: list[str] = []
        self._size = 0
        self._flushed_at = time.monotonic()

    def add(self, line: str) -> None:
        self._lines.append(line)
        self._size += len(line)
        if self._size >= FLUSH_BYTES or time.monotonic() - self._flushed_at >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        self._flushed_at = time.monotonic()
        if self._lines:
            text, self._lines, self._size = "".join(self._lines), [], 0
            sys.stderr.write(text)  # looked up now: a test may have replaced it
            sys.stderr.flush()


class AccessLog:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics, lines: LineBuffer | None) -> None:
        self.app = app
        self.metrics = metrics
        self.lines = lines  # None: no access log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope["headers"])
        scope.setdefault("state", {})["request_id"] = request_id
        echoed = (b"x-request-id", request_id.encode())
        status = 500
        sent = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            self.metrics.observe(scope["method"], template, status, seconds)
            if self.lines is not None:
                client = scope.get("client")
                client_id = scope["state"].get("client_id")
                self.lines.add(
                    f'{{"ts":{time.time():.3f},"request_id":"{request_id}",'
                    f'"method":{_text(scope["method"])},"path":{_text(scope["path"])},'
                    f'"route":{_text(template)},"status":{status},'
                    f'"duration_ms":{seconds * 1000:.3f},"bytes":{sent},'
                    f'"client":{_text(client[0]) if client else "null"},'
                    f'"client_id":{_text(client_id) if client_id else "null"}}}\n'
                )

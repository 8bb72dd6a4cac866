"""Request ids, request metrics and one JSON access-log line per request, as ASGI middleware.

A request keeps the ``X-Request-ID`` it came with when that is sane (1 to 128
characters of letters, digits and ``._:-``); otherwise it gets a new random
one. Either way the id is echoed in the response's ``X-Request-ID`` header,
put in ``request.state.request_id`` and written in the log line, so one id
follows a request from a proxy through the API's logs. The log line goes to
the ``linkcast.access`` logger as one JSON object:

    {"ts": 1767225600.123, "request_id": "...", "method": "GET", "path": "/v1/links/a",
     "route": "/v1/links/{link}", "status": 200, "duration_ms": 0.41, "bytes": 812,
     "client": "127.0.0.1", "client_id": "dashboard"}

``client_id`` is the authenticated client, when a route checked a token. A
streamed answer (``/v1/stream``) is logged when it ends.
"""

import json
import logging
import os
import re
import sys
import time
from typing import IO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import ApiMetrics

access_log = logging.getLogger("linkcast.access")

_SANE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED = "<unmatched>"


def configure_access_log(stream: IO[str] = sys.stderr) -> None:
    """Send ``linkcast.access`` lines, as they are, to ``stream`` (and nowhere else)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.handlers[:] = [handler]
    access_log.setLevel(logging.INFO)
    access_log.propagate = False


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The incoming X-Request-ID if it is sane, else a new one."""
    for name, value in headers:
        if name == b"x-request-id" and _SANE_ID.match(value):
            return value.decode()
    return os.urandom(12).hex()


class AccessLog:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics, log_requests: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.log_requests = log_requests

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
            if self.log_requests and access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_log.info(
                    json.dumps(
                        {
                            "ts": round(time.time(), 3),
                            "request_id": request_id,
                            "method": scope["method"],
                            "path": scope["path"],
                            "route": template,
                            "status": status,
                            "duration_ms": round(seconds * 1000, 3),
                            "bytes": sent,
                            "client": client[0] if client else None,
                            "client_id": scope["state"].get("client_id"),
                        }
                    )
                )

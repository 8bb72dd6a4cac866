"""GET /v1/stream: the live stream of windows, forecasts and alerts as Server-Sent Events.

Each event is one record as its topic carries it::

    id: 1042
    event: window            (or forecast, alert)
    data: {"v": 1, "link": "edge-1", ...}

A client whose queue overflowed (it read more slowly than events came) lost
its oldest events; before its next events it gets::

    event: dropped
    data: {"dropped": 17, "total": 230}

(``dropped`` since the last such notice, ``total`` for the connection). A
comment line keeps an idle stream alive. The stream ends, with
``event: expired``, when the token it was opened with expires: reconnect with
a new one.

The token goes in the Authorization header like everywhere else, never in
the URL (where proxies and logs would keep it). Browsers' EventSource cannot
send headers, so the dashboard reads the stream with fetch() instead.
"""

import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from pydantic import StringConstraints
from starlette.types import Receive, Scope, Send

from api.auth import Principal
from api.context import GUARDED, NOT_READY, ApiContext
from api.hub import Hub, Subscription, TooManyClientsError
from api.viewstate import STREAM_KINDS, StreamKind

EVENT_STREAM = "text/event-stream"
RECONNECT_MS = 3000

LinkId = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class EventStream(StreamingResponse):
    """A streaming answer that leaves the hub when it ends, however it ends."""

    def __init__(self, hub: Hub, subscription: Subscription, body: AsyncIterator[bytes]) -> None:
        super().__init__(
            body,
            media_type=EVENT_STREAM,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        self.hub = hub
        self.subscription = subscription

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.hub.unsubscribe(self.subscription)


def router(ctx: ApiContext) -> APIRouter:
    routes = APIRouter(tags=["stream"])
    hub = ctx.view.hub
    heartbeat_s = ctx.settings.sse_heartbeat_s

    async def events(subscription: Subscription, until_s: float) -> AsyncIterator[bytes]:
        yield b"retry: %d\n: linkcast live stream\n\n" % RECONNECT_MS
        while True:
            remaining_s = until_s - time.time()
            if remaining_s <= 0:
                yield b'event: expired\ndata: {"detail": "the token expired; reconnect"}\n\n'
                return
            await subscription.wait(min(heartbeat_s, remaining_s))
            chunks = []
            dropped = subscription.take_dropped()
            if dropped:
                chunks.append(
                    b'event: dropped\ndata: {"dropped":%d,"total":%d}\n\n'
                    % (dropped, subscription.dropped_total)
                )
            for event in subscription.take():
                chunks.append(
                    b"id: %d\nevent: %s\ndata: %s\n\n"
                    % (event.seq, event.update.kind.encode(), event.update.data)
                )
            yield b"".join(chunks) if chunks else b": keep-alive\n\n"

    @routes.get(
        "/v1/stream",
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {EVENT_STREAM: {"schema": {"type": "string"}}},
                "description": "Server-Sent Events: window, forecast, alert, dropped, expired",
            },
            **NOT_READY,
            **GUARDED,
        },
    )
    async def stream(
        principal: Annotated[Principal, ctx.guard.requires("read")],
        link: Annotated[
            list[LinkId] | None,
            Query(max_length=1000, description="only these links (repeat the parameter); all"),
        ] = None,
        kind: Annotated[
            list[StreamKind] | None,
            Query(description="only these kinds (repeat the parameter); all"),
        ] = None,
    ) -> StreamingResponse:
        """Live windows, forecasts and alerts as Server-Sent Events, filtered by link and kind.

        Each client has a bounded queue; a client that falls behind loses its oldest events
        and is told how many (event ``dropped``). The stream ends when the token expires."""
        ctx.require_ready()
        try:
            subscription = hub.subscribe(link, kind or STREAM_KINDS)
        except TooManyClientsError as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, f"{exc}; retry later", {"Retry-After": "5"}
            ) from None
        return EventStream(hub, subscription, events(subscription, principal.expires_at_s))

    return routes

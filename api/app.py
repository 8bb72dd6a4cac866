"""The FastAPI application: the view, security, middleware and the route groups put together."""

import asyncio
import contextlib
import gc
import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from api.accesslog import AccessLog, LineBuffer
from api.capacities import load_capacities
from api.context import ApiContext
from api.errors import invalid_request
from api.fastpath import LinkFastPath
from api.guard import Guard
from api.hub import Hub
from api.limits import BodyLimit
from api.metrics import ApiMetrics
from api.routes import alerts, dashboard, links, model_versions, ops, predict, stream, token
from api.routes.links import LINK_PATH
from api.security import Security
from api.settings import ApiSettings
from api.view import MaterializedView
from api.viewstate import ViewState

#: The route groups, in the order they are matched. Add a group here.
ROUTERS: list[Callable[[ApiContext], APIRouter]] = [
    ops.router,
    token.router,
    links.router,
    alerts.router,
    model_versions.router,
    predict.router,
    stream.router,
    dashboard.router,
]


def new_view(settings: ApiSettings) -> MaterializedView:
    """An empty view of the settings' topics, to be started by the app."""
    state = ViewState(
        settings.view_history_windows,
        settings.view_recent_alerts,
        load_capacities(settings.link_capacities_file),
    )
    return MaterializedView.following(settings, state, new_hub(settings))


def new_hub(settings: ApiSettings) -> Hub:
    return Hub(settings.sse_queue_max, settings.sse_clients_max)


async def _flush_every(lines: LineBuffer | None) -> None:
    """Write what the access log holds at least every flush_s, even when no request comes."""
    if lines is None or lines.flush_s <= 0:
        return
    while True:
        await asyncio.sleep(lines.flush_s)
        lines.flush()


async def _freeze_when_ready(view: MaterializedView) -> None:
    """Once the view is first ready, move every object so far out of the cyclic GC's sight.

    The modules, the app and the view as read at start are long-lived; a full
    collection walked them all (tens of ms for a thousand links on this kind
    of machine) in the middle of requests, the top of the latency tail.
    Objects made later are collected as before, and frozen ones that become
    garbage are still freed by reference counting.
    """
    while True:  # readiness is a condition over several things, polled as /ready polls it
        if view.readiness().ready:
            break
        await asyncio.sleep(0.5)
    gc.collect()
    gc.freeze()


def _without_otel() -> dict[str, Any]:
    """FastAPI's own OpenTelemetry off, where this FastAPI has it: /metrics and the access log
    say what it would, and its per-request check of the global providers costs the hot path."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def create_app(settings: ApiSettings, view: MaterializedView | None = None) -> FastAPI:
    """Build the API; ``view`` defaults to one following the settings' topics.

    Raises AuthConfigError when the security settings are not enough for the mode,
    CapacitiesError when the link capacities file is wrong.
    """
    security = Security.from_settings(settings)
    the_view = view or new_view(settings)
    metrics = ApiMetrics(the_view)
    ctx = ApiContext(settings, security, Guard(security), the_view, metrics)
    lines = LineBuffer(settings.api_access_log_flush_s) if settings.api_access_log else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await the_view.start(settings.broker_timeout_s)
        chores = [
            asyncio.create_task(_flush_every(lines), name="access-log-flush"),
            asyncio.create_task(_freeze_when_ready(the_view), name="gc-freeze"),
        ]
        try:
            yield
        finally:
            for chore in chores:
                chore.cancel()
            for chore in chores:
                with contextlib.suppress(asyncio.CancelledError):
                    await chore
            await the_view.stop()
            if lines is not None:
                lines.flush()

    app = LinkcastApp(
        title="linkcast",
        version="0.1.0",
        summary="Real-time per-link traffic windows, classes and forecasts",
        lifespan=lifespan,
        **_without_otel(),
    )
    app.state.ctx = ctx
    app.add_exception_handler(RequestValidationError, invalid_request)
    groups = [make(ctx) for make in ROUTERS]
    for group in groups:
        app.include_router(group)
    app.add_middleware(BodyLimit, max_bytes=settings.api_body_max_bytes)
    if settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api_cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    link_route = next(r for g in groups for r in g.routes if getattr(r, "path", "") == LINK_PATH)
    fast = LinkFastPath(
        app.inner, ctx, link_route, leave_cross_origin=bool(settings.api_cors_origins)
    )
    app.outer = AccessLog(fast, metrics=metrics, lines=lines)
    return app


class LinkcastApp(FastAPI):
    """FastAPI with two layers of plain ASGI in front of all of its own.

    Outermost, the access log and request metrics (api.accesslog), so that they
    see every request and every answer, a 500 from FastAPI's error handler
    included; then the hot path of ``GET /v1/links/{link}`` (api.fastpath),
    which answers its 200s without the layers FastAPI and Starlette put
    around every request, and leaves everything else to them.
    """

    outer: ASGIApp | None = None

    async def inner(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await (self.outer or self.inner)(scope, receive, send)

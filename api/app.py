"""The FastAPI application: routes read the view and return a schema."""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Response, status

from api.schemas import Health, LinkAnswer, LinksPage, Problem, Ready
from api.settings import ApiSettings
from api.view import LinkStateView
from streams.schemas import LinkState
from streams.topics import Topics


def create_app(settings: ApiSettings, view: LinkStateView | None = None) -> FastAPI:
    """Build the API; ``view`` defaults to one following the settings' link-state topic."""
    the_view = view or LinkStateView(
        settings.kafka_bootstrap,
        Topics.from_settings(settings).link_state,
        broker_check_s=settings.broker_check_s,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await the_view.start(settings.broker_timeout_s)
        try:
            yield
        finally:
            await the_view.stop()

    app = FastAPI(
        title="linkcast",
        version="0.1.0",
        summary="Real-time per-link traffic windows, classes and forecasts",
        lifespan=lifespan,
    )
    not_ready: dict[int | str, dict[str, Any]] = {
        503: {"model": Problem, "description": "the view is not ready"}
    }

    def require_ready() -> None:
        readiness = the_view.readiness()
        if not readiness.ready:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, readiness.reason)

    @app.get("/health", response_model=Health, tags=["ops"])
    async def health() -> Health:
        """The process is alive (it says nothing of the broker: see /ready)."""
        return Health(status="ok")

    @app.get("/ready", response_model=Ready, responses=not_ready, tags=["ops"])
    async def ready(response: Response) -> Ready:
        """200 when the broker answers and the view has caught up; 503 with the reason otherwise."""
        readiness = the_view.readiness()
        if not readiness.ready:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Ready(ready=readiness.ready, reason=readiness.reason, links=len(the_view.links))

    @app.get("/v1/links", response_model=LinksPage, responses=not_ready, tags=["links"])
    async def list_links(
        offset: int = Query(0, ge=0, description="links to skip"),
        limit: int = Query(
            min(100, settings.api_page_max),
            ge=1,
            le=settings.api_page_max,
            description="links to return",
        ),
    ) -> LinksPage:
        """Every link's latest state, sorted by link id, a page at a time."""
        require_ready()
        now = time.time()
        names = sorted(the_view.links)
        page = [_answer(the_view.links[n], now) for n in names[offset : offset + limit]]
        view_age = (
            None if the_view.last_update_s is None else max(0.0, now - the_view.last_update_s)
        )
        return LinksPage(
            total=len(names), offset=offset, limit=limit, links=page, view_age_s=view_age
        )

    @app.get(
        "/v1/links/{link:path}",  # link ids may contain '/', as in ge-0/0/1
        response_model=LinkAnswer,
        responses={404: {"model": Problem, "description": "no such link"}, **not_ready},
        tags=["links"],
    )
    async def get_link(link: str) -> LinkAnswer:
        """One link's latest state: its last window, totals and watermark."""
        require_ready()
        state = the_view.links.get(link)
        if state is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no link {link!r} in the view")
        return _answer(state, time.time())

    return app


def _answer(state: LinkState, now: float) -> LinkAnswer:
    return LinkAnswer(link=state.link, age_s=max(0.0, now - state.updated_at_s), state=state)

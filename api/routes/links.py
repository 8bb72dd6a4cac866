"""GET /v1/links, /v1/links/{link} and /v1/links/{link}/history: links from the view.

These answers are written as bytes from each link's cached JSON (see
api.linkentry) rather than through a response model: the schema in the
OpenAPI document is the same, and the JSON was made by that model when the
link last changed.

A link id may contain '/', as in ``core/ge-0/0/1``; ``.../history`` at the
end of a path is the history route, so a link whose id itself ends in
``/history`` has its history reachable but not its detail.
"""

import json
import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from fastapi.exceptions import RequestValidationError

from api.context import GUARDED, NOT_FOUND, NOT_READY, ApiContext
from api.linkentry import LinkEntry
from api.linkfilter import LinkFilter
from api.schemas import LinkAnswer, LinkHistory, LinksPage
from streams.schemas import TrafficClass

JSON = "application/json"
LinkParam = Annotated[
    str, Path(description="link id; it may contain '/'", examples=["link-0000", "core/ge-0/0/1"])
]
LINK_PATH = "/v1/links/{link:path}"  # its 200 answers come from api.fastpath


def router(ctx: ApiContext) -> APIRouter:
    routes = APIRouter(tags=["links"], dependencies=[ctx.guard.requires("read")])
    state = ctx.view.state
    page_max = ctx.settings.api_page_max
    history_max = ctx.settings.view_history_windows

    def find(link: str) -> LinkEntry:
        ctx.require_ready()
        entry = state.links.get(link)
        if entry is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no link {link!r} in the view")
        return entry

    @routes.get("/v1/links", response_model=LinksPage, responses={**NOT_READY, **GUARDED})
    async def list_links(
        offset: int = Query(0, ge=0, le=1_000_000_000, description="links to skip"),
        limit: int = Query(
            min(100, page_max), ge=1, le=page_max, description="links to return at most"
        ),
        traffic_class: Annotated[
            TrafficClass | None,
            Query(
                alias="class",
                description="only links whose newest bin's class mix is dominated by this "
                "class (a link whose newest bin has no mix is left out)",
            ),
        ] = None,
        alerting: bool | None = Query(
            None, description="true: only links with an active alert; false: only those without"
        ),
        min_utilisation: float | None = Query(
            None, ge=0, le=1e6, description="only links at or above this utilisation (known)"
        ),
        max_utilisation: float | None = Query(
            None, ge=0, le=1e6, description="only links at or below this utilisation (known)"
        ),
    ) -> Response:
        """The links, sorted by id, filtered, a page at a time; ``total`` counts the filtered."""
        if (
            min_utilisation is not None
            and max_utilisation is not None
            and min_utilisation > max_utilisation
        ):
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": ("query", "min_utilisation"),
                        "msg": f"min_utilisation ({min_utilisation}) is above "
                        f"max_utilisation ({max_utilisation})",
                        "input": min_utilisation,
                    }
                ]
            )
        ctx.require_ready()
        wanted = LinkFilter(traffic_class, alerting, min_utilisation, max_utilisation)
        names = state.names()
        if not wanted.keeps_all:
            names = [n for n in names if wanted.keeps(state.links[n])]
        now = time.time()
        age = state.age_s(state.last_update_s, now)
        body = b'{"total":%d,"offset":%d,"limit":%d,"age_s":%s,"links":[%s]}' % (
            len(names),
            offset,
            limit,
            b"null" if age is None else b"%.3f" % age,
            b",".join(state.links[n].answer_json(now) for n in names[offset : offset + limit]),
        )
        return Response(body, media_type=JSON)

    @routes.get(
        "/v1/links/{link:path}/history",
        response_model=LinkHistory,
        responses={**NOT_FOUND, **NOT_READY, **GUARDED},
    )
    async def link_history(
        link: LinkParam,
        n: int = Query(
            min(60, history_max),
            ge=1,
            le=history_max,
            description=f"windows to return, the newest (at most {history_max} are kept)",
        ),
    ) -> Response:
        """The link's newest ``n`` windows (or as many as the view has), oldest first."""
        entry = find(link)
        kept = list(entry.history)[-n:]
        body = b'{"link":%s,"age_s":%.3f,"n":%d,"windows":[%s]}' % (
            json.dumps(link).encode(),
            max(0.0, time.time() - entry.produced_at_s),
            len(kept),
            b",".join(kept),
        )
        return Response(body, media_type=JSON)

    @routes.get(
        LINK_PATH,
        response_model=LinkAnswer,
        responses={**NOT_FOUND, **NOT_READY, **GUARDED},
    )
    async def get_link(link: LinkParam) -> Response:
        """One link: its state, newest window, class mix, utilisation, forecast with its
        intervals, forecast error and active alerts."""
        return Response(find(link).answer_json(time.time()), media_type=JSON)

    return routes

"""The server side of `linkcast bench api`: ``python -m api.benchserver linkcast|bare --port P``.

``linkcast`` is the real app over a view filled with synthetic records (its
settings from LINKCAST_* variables, as `linkcast api` reads them); ``bare``
is one Starlette route answering the same JSON bytes, made once. Both run in
one uvicorn worker, pinned to ``--core`` when given.
"""

import argparse
import gc
import os
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from api.app import create_app, new_hub
from api.httpserver import uvicorn_options
from api.settings import ApiSettings
from api.synthetic import fill
from api.view import MaterializedView
from api.viewstate import ViewState


def filled_state(settings: ApiSettings, links: int, now_s: float) -> ViewState:
    state = ViewState(settings.view_history_windows, settings.view_recent_alerts)
    fill(state, links, windows=settings.view_history_windows, now_s=now_s)
    return state


def linkcast_app(links: int, now_s: float) -> ASGIApp:
    settings = ApiSettings()
    view = MaterializedView(filled_state(settings, links, now_s), new_hub(settings))
    return create_app(settings, view)  # its access log goes to stderr: the bench's log file


def bare_app(links: int, now_s: float) -> ASGIApp:
    state = filled_state(ApiSettings(), links, now_s)
    now = time.time()
    bodies = {name: entry.answer_json(now) for name, entry in state.links.items()}

    async def link(request: Request) -> Response:
        body = bodies.get(request.path_params["link"])
        if body is None:
            return Response(b'{"detail":"no such link"}', 404, media_type="application/json")
        return Response(body, media_type="application/json")

    async def health(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    app = Starlette(routes=[Route("/v1/links/{link:path}", link), Route("/health", health)])
    gc.collect()
    gc.freeze()  # what linkcast's app does once its view is ready: the same GC for both
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=["linkcast", "bare"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--links", type=int, default=1000)
    parser.add_argument("--core", type=int, help="run on this CPU only")
    parser.add_argument("--now", type=float, help="the newest bin's end (default: now)")
    args = parser.parse_args()
    now = time.time() if args.now is None else args.now
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    make = linkcast_app if args.target == "linkcast" else bare_app
    app = make(args.links, now)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        workers=1,
        access_log=False,
        log_level="warning",
        **uvicorn_options(ApiSettings()),  # both targets: the parser `linkcast api` runs
    )


if __name__ == "__main__":
    main()

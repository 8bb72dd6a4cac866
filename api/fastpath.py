"""The hot path of ``GET /v1/links/{link}`` as plain ASGI: its 200 answer without FastAPI.

Resolving FastAPI's dependencies and routes costs several times what the
answer itself costs (the answer is a cached byte string, see api.linkentry),
and this route is the one dashboards and scripts poll. So this layer, just in
front of the router, answers the one case that needs no decision of
FastAPI's: a GET of a link the view has, with a bearer token that verifies
and carries ``read``, a ready view and a client within its rate limit. It
runs the same checks in the same order with the same objects (the Guard's
verified-token memory and rate limiter, the view's readiness) and writes the
same bytes as the FastAPI route.

It stands in front of FastAPI's own layers (see api.app.LinkcastApp), behind
the access log. Every other request, including every error (401, 403, 404,
429, 503) and, when CORS is on, every request with an Origin, goes on to the
FastAPI route unchanged, which stays the definition of the route: its
OpenAPI entry, its validation and its error answers. A refused rate-limit take
is taken again there and refused again, so nothing is counted twice.
"""

import time

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import TokenError
from api.context import ApiContext

PREFIX = "/v1/links/"
SUFFIX = "/history"


class LinkFastPath:
    def __init__(
        self, app: ASGIApp, ctx: ApiContext, route: BaseRoute, leave_cross_origin: bool = False
    ) -> None:
        self.app = app
        self.ctx = ctx
        self.route = route  # the FastAPI route, for the metrics' route template
        # With CORS on, a request with an Origin goes through the CORS middleware instead.
        self.leave_cross_origin = leave_cross_origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.startswith(PREFIX) and len(path) > len(PREFIX) and not path.endswith(SUFFIX):
                body = self._answer(scope, path[len(PREFIX) :])
                if body is not None:
                    scope["route"] = self.route
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": [
                                (b"content-type", b"application/json"),
                                (b"content-length", b"%d" % len(body)),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)

    def _answer(self, scope: Scope, link: str) -> bytes | None:
        """The 200 body, or None to leave the request to the FastAPI route."""
        token, origin = _credentials(scope["headers"])
        if token is None or (origin and self.leave_cross_origin):
            return None
        ctx = self.ctx
        try:
            principal = ctx.guard.tokens.verify(token)
        except TokenError:
            return None
        if "read" not in principal.scopes or not ctx.view.readiness().ready:
            return None
        entry = ctx.view.state.links.get(link)
        if entry is None or ctx.guard.limiter.take(principal.client_id):
            return None
        scope.setdefault("state", {})["client_id"] = principal.client_id
        return entry.answer_json(time.time())


def _credentials(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, bool]:
    """The bearer token of the Authorization header (as FastAPI reads it), and whether the
    request has an Origin header."""
    token = None
    origin = False
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            credentials = credentials.strip()
            if scheme.lower() == "bearer" and credentials:
                token = credentials
        elif name == b"origin":
            origin = True
    return token, origin

"""The FastAPI application: routes read the view and return a schema."""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Response, status
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)
from starlette.concurrency import run_in_threadpool

from api.auth import SCOPES, Principal, TokenError, hash_secret, retry_after, verify_secret
from api.limits import BodyLimit
from api.schemas import Health, LinkAnswer, LinksPage, Problem, Ready, TokenAnswer
from api.security import Security
from api.settings import ApiSettings
from api.view import LinkStateView
from streams.schemas import LinkState
from streams.topics import Topics

# Verifying against this hash costs what verifying a real client's does, so an
# unknown client id takes as long to refuse as a wrong secret.
_NO_CLIENT_HASH = hash_secret("no such client")


def create_app(settings: ApiSettings, view: LinkStateView | None = None) -> FastAPI:
    """Build the API; ``view`` defaults to one following the settings' link-state topic.

    Raises AuthConfigError when the security settings are not enough for the mode.
    """
    security = Security.from_settings(settings)
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
    app.add_middleware(BodyLimit, max_bytes=settings.api_body_max_bytes)
    if settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api_cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    not_ready: dict[int | str, dict[str, Any]] = {
        503: {"model": Problem, "description": "the view is not ready"}
    }
    guarded: dict[int | str, dict[str, Any]] = {
        401: {"model": Problem, "description": "no valid bearer token"},
        403: {"model": Problem, "description": "the token lacks the scope"},
        429: {"model": Problem, "description": "too many requests; see Retry-After"},
    }
    bearer = HTTPBearer(auto_error=False, description="a token from POST /v1/token")
    basic = HTTPBasic(auto_error=False)

    def requires(scope: str) -> Any:
        """A dependency: the caller's token must be valid and carry ``scope``."""

        async def check(
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        ) -> Principal:
            if credentials is None:
                raise _unauthorized("a bearer token is required (get one at POST /v1/token)")
            try:
                principal = security.issuer.verify(credentials.credentials)
            except TokenError as exc:
                raise _unauthorized(str(exc)) from None
            if scope not in principal.scopes:
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    f"the token lacks the {scope!r} scope",
                    headers={
                        "WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'
                    },
                )
            wait_s = security.limiter.take(principal.client_id)
            if wait_s:
                raise HTTPException(
                    status.HTTP_429_TOO_MANY_REQUESTS,
                    f"client {principal.client_id!r} is over its rate limit",
                    headers={"Retry-After": retry_after(wait_s)},
                )
            return principal

        return Depends(check)

    @app.post(
        "/v1/token",
        response_model=TokenAnswer,
        responses={
            400: {"description": "invalid_request, unsupported_grant_type or invalid_scope"},
            401: {"description": "invalid_client"},
            429: {"description": "too many attempts; see Retry-After"},
        },
        tags=["auth"],
    )
    async def token(
        basic_credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)],
        grant_type: str | None = Form(None, description="client_credentials", max_length=100),
        scope: str | None = Form(
            None, description="space-separated; default: all the client's", max_length=200
        ),
        client_id: str | None = Form(None, max_length=100),
        client_secret: str | None = Form(None, max_length=200),
    ) -> Any:
        """OAuth2 client credentials (RFC 6749 section 4.4): a client's id and secret for a JWT."""
        if basic_credentials is not None:
            client_id, client_secret = basic_credentials.username, basic_credentials.password
        if grant_type is None:
            return _oauth_error(400, "invalid_request", "grant_type is required")
        if grant_type != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", "only client_credentials is served")
        if not client_id or client_secret is None:
            return _oauth_error(401, "invalid_client", "give client_id and client_secret")
        client = security.clients.get(client_id)
        wait_s = security.limiter.take(f"token:{client_id if client else '?'}")
        if wait_s:
            return _oauth_error(
                429, "slow_down", "too many attempts", {"Retry-After": retry_after(wait_s)}
            )
        stored = client.secret_hash if client else _NO_CLIENT_HASH
        matches = await run_in_threadpool(verify_secret, client_secret, stored)
        if client is None or not matches:
            return _oauth_error(401, "invalid_client", "unknown client or wrong secret")
        asked: list[str] = scope.split() if scope else list(client.scopes)
        if not asked or any(s not in SCOPES or s not in client.scopes for s in asked):
            return _oauth_error(
                400, "invalid_scope", f"client {client_id!r} may ask for {' '.join(client.scopes)}"
            )
        return TokenAnswer(
            access_token=security.issuer.issue(client_id, asked),
            token_type="Bearer",
            expires_in=settings.api_token_ttl_s,
            scope=" ".join(asked),
        )

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

    @app.get(
        "/v1/links",
        response_model=LinksPage,
        responses={**not_ready, **guarded},
        tags=["links"],
        dependencies=[requires("read")],
    )
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
        responses={404: {"model": Problem, "description": "no such link"}, **not_ready, **guarded},
        tags=["links"],
        dependencies=[requires("read")],
    )
    async def get_link(link: str) -> LinkAnswer:
        """One link's latest state: its last window, totals and watermark."""
        require_ready()
        state = the_view.links.get(link)
        if state is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no link {link!r} in the view")
        return _answer(state, time.time())

    return app


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        reason,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def _oauth_error(
    code: int, error: str, description: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An error of the token endpoint, in RFC 6749 section 5.2's shape."""
    headers = {**(headers or {}), "Cache-Control": "no-store"}
    if code == 401:
        headers["WWW-Authenticate"] = 'Basic realm="linkcast"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=code, headers=headers
    )


def _answer(state: LinkState, now: float) -> LinkAnswer:
    return LinkAnswer(link=state.link, age_s=max(0.0, now - state.updated_at_s), state=state)

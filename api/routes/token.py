"""POST /v1/token: OAuth2 client credentials for a JWT."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from starlette.concurrency import run_in_threadpool

from api.auth import SCOPES, hash_secret, retry_after, verify_secret
from api.context import ApiContext
from api.schemas import OAuthError, Problem, TokenAnswer

# Verifying against this hash costs what verifying a real client's does, so an
# unknown client id takes as long to refuse as a wrong secret.
_NO_CLIENT_HASH = hash_secret("no such client")


def router(ctx: ApiContext) -> APIRouter:
    routes = APIRouter(tags=["auth"])
    security, settings = ctx.security, ctx.settings
    basic = HTTPBasic(auto_error=False)

    @routes.post(
        "/v1/token",
        response_model=TokenAnswer,
        responses={
            400: {
                "model": OAuthError,
                "description": "invalid_request, unsupported_grant_type or invalid_scope",
            },
            401: {"model": OAuthError, "description": "invalid_client"},
            413: {"model": Problem, "description": "the request body is too large"},
            429: {"model": OAuthError, "description": "slow_down: too many attempts; Retry-After"},
        },
        # HTTP Basic or client_id and client_secret in the form: Basic is one way, not a must
        openapi_extra={"security": [{"HTTPBasic": []}, {}]},
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

    return routes


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

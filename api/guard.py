"""Who may call a route: the bearer token, its scope and the client's rate limit.

``Guard.requires(scope)`` is the dependency every protected route declares
(``dependencies=[guard.requires("read")]``, or as a parameter to get the
Principal). Verifying an HS256 JWT costs more than answering a cached link,
so a token that verified is remembered, keyed by the token string, until its
own expiry (with the verifier's leeway): the same bytes that verified once
verify again until then. Only tokens that verified are remembered, so a
forged token is checked in full every time. The memory is bounded.
"""

import time
from typing import Annotated, Any

from fastapi import HTTPException, Request, Security, status
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import OAuth2
from fastapi.security.utils import get_authorization_scheme_param

from api.auth import Principal, TokenError, TokenIssuer, retry_after
from api.security import Security as ApiSecurity

VERIFIED_MAX = 10_000


class VerifiedTokens:
    """``issuer.verify`` with a bounded memory of the tokens that verified."""

    def __init__(self, issuer: TokenIssuer, max_entries: int = VERIFIED_MAX) -> None:
        self.issuer = issuer
        self.max_entries = max_entries
        self._known: dict[str, Principal] = {}

    def verify(self, token: str, now_s: float | None = None) -> Principal:
        """The token's Principal; TokenError if it does not verify or has expired."""
        now = time.time() if now_s is None else now_s
        known = self._known.get(token)
        if known is not None:
            if known.valid_at(now):
                return known
            del self._known[token]
        principal = self.issuer.verify(token)
        if len(self._known) >= self.max_entries:
            self._forget_expired(now)
        if len(self._known) < self.max_entries:
            self._known[token] = principal
        return principal

    def _forget_expired(self, now: float) -> None:
        self._known = {t: p for t, p in self._known.items() if p.valid_at(now)}


def unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        reason,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


SCOPE_MEANINGS = {
    "read": "read links, alerts, models and the live stream",
    "predict": "ask for predictions",
    "admin": "operate the API",
}
TOKEN_URL = "/v1/token"


class Guard:
    def __init__(self, security: ApiSecurity) -> None:
        self.tokens = VerifiedTokens(security.issuer)
        self.limiter = security.limiter
        # In the OpenAPI document: OAuth2 client credentials at POST /v1/token, bearer tokens.
        self.scheme = OAuth2(
            flows=OAuthFlows(
                clientCredentials=OAuthFlowClientCredentials(
                    tokenUrl=TOKEN_URL, scopes=SCOPE_MEANINGS
                )
            ),
            scheme_name="OAuth2",
            description="a bearer token from POST /v1/token (client credentials)",
            auto_error=False,
        )

    def requires(self, scope: str) -> Any:
        """A dependency: the caller's token must be valid and carry ``scope``; it returns the
        Principal. 401 without a valid token, 403 without the scope, 429 over the rate limit."""

        async def check(
            request: Request, authorization: Annotated[str | None, Security(self.scheme)]
        ) -> Principal:
            kind, token = get_authorization_scheme_param(authorization)
            if kind.lower() != "bearer" or not token:
                raise unauthorized("a bearer token is required (get one at POST /v1/token)")
            try:
                principal = self.tokens.verify(token)
            except TokenError as exc:
                raise unauthorized(str(exc)) from None
            request.state.client_id = principal.client_id
            if scope not in principal.scopes:
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    f"the token lacks the {scope!r} scope",
                    headers={
                        "WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'
                    },
                )
            wait_s = self.limiter.take(principal.client_id)
            if wait_s:
                raise HTTPException(
                    status.HTTP_429_TOO_MANY_REQUESTS,
                    f"client {principal.client_id!r} is over its rate limit",
                    headers={"Retry-After": retry_after(wait_s)},
                )
            return principal

        return Security(check, scopes=[scope])

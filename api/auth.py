"""Who may call the API: OAuth2 client credentials, JWT bearer tokens, scopes, rate limits.

Clients are configured, never registered through the API: a JSON file names
each client, the PBKDF2 hash of its secret and the scopes it may ask for::

    {"clients": [{"id": "dashboard", "secret_hash": "pbkdf2_sha256$...", "scopes": ["read"]}]}

(``linkcast api hash-secret`` makes a hash). ``POST /v1/token`` trades a
client's id and secret (HTTP Basic or form fields, RFC 6749 section 2.3.1)
for a JWT signed with HS256, carrying issuer, audience, subject, scopes and
an expiry. Every protected route checks the signature, the algorithm (only
HS256: an ``alg: none`` token is refused), issuer, audience and expiry, then
the scope the route needs.

Rate limits are per client and per replica: a token bucket refilled at
``rate_per_s`` up to ``burst`` requests.
"""

import base64
import hashlib
import hmac
import json
import math
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streams.exceptions import LinkcastError

Scope = Literal["read", "predict", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "predict", "admin")
ALGORITHM = "HS256"
MIN_KEY_BYTES = 32
LEEWAY_S = 5  # clock skew allowed on exp, nbf and iat
PBKDF2_ITERATIONS = 200_000


class AuthConfigError(LinkcastError):
    """The API's security settings are missing or unusable."""


# ---- client secrets -----------------------------------------------------------


def hash_secret(secret: str, iterations: int = PBKDF2_ITERATIONS) -> str:
    """A salted PBKDF2-SHA256 hash of ``secret``, as the clients file stores it."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` matches ``stored`` (compared in constant time)."""
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        expected = base64.urlsafe_b64decode(digest + "==")
        got = hashlib.pbkdf2_hmac(
            "sha256", secret.encode(), base64.urlsafe_b64decode(salt + "=="), int(iterations)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Client(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    secret_hash: str = Field(pattern=r"^pbkdf2_sha256\$\d+\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$")
    scopes: list[Scope] = Field(min_length=1)


class ClientsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    clients: list[Client]


def load_clients(path: Path) -> dict[str, Client]:
    """The clients of a clients file, by id; AuthConfigError says what is wrong with it."""
    try:
        document = ClientsFile.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise AuthConfigError(f"cannot read the clients file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise AuthConfigError(f"the clients file {path} is not JSON: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise AuthConfigError(f"the clients file {path}: {where}: {first['msg']}") from None
    clients = {c.id: c for c in document.clients}
    if len(clients) != len(document.clients):
        raise AuthConfigError(f"the clients file {path} names a client twice")
    return clients


# ---- tokens ---------------------------------------------------------------------


class TokenError(Exception):
    """A bearer token that does not authenticate anyone; ``str`` is the reason."""


@dataclass(frozen=True)
class Principal:
    """The client a valid token speaks for."""

    client_id: str
    scopes: frozenset[str]
    expires_at_s: float = math.inf  # the token's exp claim

    def valid_at(self, now_s: float) -> bool:
        """Whether the token is still unexpired at ``now_s`` (with the verifier's leeway)."""
        return now_s < self.expires_at_s + LEEWAY_S


@dataclass(frozen=True)
class TokenIssuer:
    key: bytes
    issuer: str
    audience: str
    ttl_s: int

    def __post_init__(self) -> None:
        if len(self.key) < MIN_KEY_BYTES:
            raise AuthConfigError(
                f"the JWT signing key must be at least {MIN_KEY_BYTES} bytes, "
                f"got {len(self.key)}; make one with: python -c "
                "'import secrets; print(secrets.token_urlsafe(48))'"
            )

    def issue(self, client_id: str, scopes: list[str], now_s: float | None = None) -> str:
        now = int(time.time() if now_s is None else now_s)
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": client_id,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_s,
            "jti": uuid.uuid4().hex,
            "scope": " ".join(scopes),
        }
        return jwt.encode(claims, self.key, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "scope"]},
                leeway=LEEWAY_S,
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise TokenError("the token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise TokenError("the token is from another issuer") from None
        except jwt.InvalidAlgorithmError:
            raise TokenError(f"the token is not signed with {ALGORITHM}") from None
        except jwt.InvalidSignatureError:
            raise TokenError("the token's signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(f"the token has no {exc.claim!r} claim") from None
        except jwt.InvalidTokenError:
            raise TokenError("the token is malformed") from None
        scope, exp = claims["scope"], claims["exp"]
        if (
            not isinstance(scope, str)
            or not isinstance(claims["sub"], str)
            or not isinstance(exp, int | float)
        ):
            raise TokenError("the token's claims are malformed")
        return Principal(claims["sub"], frozenset(scope.split()), float(exp))


# ---- rate limits ----------------------------------------------------------------


@dataclass
class RateLimiter:
    """A token bucket per key: ``rate_per_s`` sustained, ``burst`` at once."""

    rate_per_s: float
    burst: int
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (level, t)

    def take(self, key: str, now_s: float | None = None) -> float:
        """Take one request's worth; return 0 if allowed, else the seconds to wait."""
        now = time.monotonic() if now_s is None else now_s
        level, then = self._buckets.get(key, (float(self.burst), now))
        level = min(float(self.burst), level + (now - then) * self.rate_per_s)
        if level >= 1.0:
            self._buckets[key] = (level - 1.0, now)
            return 0.0
        self._buckets[key] = (level, now)
        return (1.0 - level) / self.rate_per_s


def retry_after(wait_s: float) -> str:
    """The Retry-After header value (whole seconds, at least 1) for a wait."""
    return str(max(1, math.ceil(wait_s)))

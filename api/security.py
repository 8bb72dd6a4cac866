"""The API's security, put together from settings: who signs tokens, who may ask, how fast."""

import logging
import secrets
from dataclasses import dataclass

from api.auth import AuthConfigError, Client, RateLimiter, TokenIssuer, load_clients
from api.settings import ApiSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Security:
    issuer: TokenIssuer
    clients: dict[str, Client]
    limiter: RateLimiter

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> "Security":
        """Refuses (AuthConfigError) to run in production without a key and clients of its own."""
        production = settings.api_mode == "production"
        if settings.api_jwt_key is not None:
            key = settings.api_jwt_key.get_secret_value().encode()
        elif production:
            raise AuthConfigError(
                "production mode needs a JWT signing key of its own: set LINKCAST_API_JWT_KEY "
                "(at least 32 bytes), or LINKCAST_API_MODE=development for a throwaway one"
            )
        else:
            key = secrets.token_bytes(48)
            log.warning("development mode: signing tokens with a throwaway key")
        if settings.api_clients_file is not None:
            clients = load_clients(settings.api_clients_file)
        elif production:
            raise AuthConfigError(
                "production mode needs its clients: set LINKCAST_API_CLIENTS_FILE "
                "(make secret hashes with 'linkcast api hash-secret')"
            )
        else:
            clients = {}
            log.warning("development mode without LINKCAST_API_CLIENTS_FILE: no client can log in")
        issuer = TokenIssuer(
            key, settings.api_jwt_issuer, settings.api_jwt_audience, settings.api_token_ttl_s
        )
        return cls(issuer, clients, RateLimiter(settings.api_rate_per_s, settings.api_rate_burst))

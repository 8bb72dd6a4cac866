"""API settings; each field reads LINKCAST_<FIELD>."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from streams.settings import KafkaSettings


class ApiSettings(KafkaSettings):
    """Settings of one API replica."""

    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=0, le=65535)
    api_page_max: int = Field(1000, ge=1, le=100_000, description="most links in one answer")
    broker_check_s: float = Field(5.0, gt=0, description="how often the view checks the broker")
    # The materialized view: how much of the output topics it keeps and reads at start.
    view_history_windows: int = Field(
        60, ge=1, le=3600, description="windows kept per link for /history (the newest)"
    )
    view_recent_alerts: int = Field(
        200, ge=1, le=100_000, description="alert records kept for /v1/alerts (the newest)"
    )
    view_lookback_s: float = Field(
        300.0,
        ge=0,
        le=7 * 86_400,
        description="how far back (by message time) the view reads windows, forecasts and "
        "alerts at start; link-state and models are read from the beginning",
    )
    # The live stream (GET /v1/stream).
    sse_queue_max: int = Field(
        256, ge=1, le=100_000, description="events queued per stream client; the oldest drop"
    )
    sse_clients_max: int = Field(100, ge=1, le=10_000, description="stream clients at once")
    sse_heartbeat_s: float = Field(15.0, gt=0, le=300, description="idle stream keep-alive")
    api_access_log: bool = Field(True, description="one JSON line per request on stderr")
    api_access_log_flush_s: float = Field(
        1.0, ge=0, le=60, description="access log lines are written together this often (0: each)"
    )
    # Security. Production (the default) needs a signing key and a clients file of its
    # own; development makes a throwaway key when none is given.
    api_mode: Literal["production", "development"] = "production"
    api_jwt_key: SecretStr | None = Field(None, description="HS256 signing key, >= 32 bytes")
    api_jwt_issuer: str = Field("linkcast", min_length=1)
    api_jwt_audience: str = Field("linkcast-api", min_length=1)
    api_token_ttl_s: int = Field(900, ge=10, le=86_400, description="token lifetime")
    api_clients_file: Path | None = Field(None, description="JSON file of clients and scopes")
    api_rate_per_s: float = Field(100.0, gt=0, description="requests/s per client, sustained")
    api_rate_burst: int = Field(200, ge=1, description="requests per client at once")
    api_body_max_bytes: int = Field(1 << 20, ge=1024, description="largest request body")
    # The HTTP server (api.httpserver).
    api_http_parser: Literal["h11", "httptools"] = Field(
        "h11",
        description="uvicorn's HTTP/1.1 parser: h11 bounds a request's head "
        "(api_header_max_bytes); httptools is faster but bounds neither the size nor the "
        "number of headers: choose it only behind a proxy that bounds them",
    )
    api_header_max_bytes: int = Field(
        64 * 1024,
        ge=4096,
        le=1 << 20,
        description="largest request line and headers together (h11); over it: 400, and the "
        "connection is closed",
    )
    api_cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed by CORS; none: CORS off"
    )

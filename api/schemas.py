"""What the API answers with. Input and stream records come from streams.schemas.

Every answer from the view carries ``age_s``: seconds of processing time
since the newest data it is made of was produced (for a link, the newest of
its records; for a page or a list, the newest record the view applied), or
None when there is no such data yet.
"""

from typing import Literal

from pydantic import BaseModel, Field

from streams.schemas import (
    Alert,
    Forecast,
    LinkState,
    ModelAnnouncement,
    TrafficClass,
    WindowRecord,
)


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    ready: bool
    reason: str
    links: int


class Problem(BaseModel):
    detail: str


class OAuthError(BaseModel):
    """An error of the token endpoint (RFC 6749 section 5.2)."""

    error: str
    error_description: str


class TokenAnswer(BaseModel):
    """An access token (RFC 6749 section 5.1)."""

    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str


class HorizonScore(BaseModel):
    """The most recent scored forecast of one horizon."""

    made_at_s: float = Field(description="event time the forecast was made (a bin end)")
    forecast_bps: float
    lower_bps: float
    upper_bps: float
    actual_bps: float = Field(description="bits/s of the bin the forecast was for")
    inside: bool = Field(description="the actual value lay inside the interval")


class HorizonError(BaseModel):
    """Forecast error of one horizon over the link's recent scored forecasts."""

    horizon_s: float
    scored: int = Field(ge=1, description="forecasts scored (the most recent, bounded)")
    mae_bps: float = Field(ge=0, description="mean absolute error, bits/s")
    smape: float = Field(ge=0, le=2, description="mean symmetric absolute percentage error")
    coverage: float = Field(ge=0, le=1, description="share of actual values inside the interval")
    last: HorizonScore


class LinkDetail(BaseModel):
    """Everything the view knows of one link, newest first."""

    link: str
    state: LinkState | None = Field(description="the worker's latest state (link-state topic)")
    window: WindowRecord | None = Field(description="the newest window (windows topic or state)")
    capacity_bps: float | None = Field(description="from the capacities file; None: unknown")
    utilisation: float | None = Field(description="window_bps / capacity_bps; None: unknown")
    class_mix: dict[str, float] | None = Field(
        description="byte share per class in the newest window's bin; None: no mix in it"
    )
    dominant_class: TrafficClass | None
    forecast: Forecast | None = Field(description="the newest forecast, with its intervals")
    forecast_error: list[HorizonError] | None = Field(
        description="per horizon, once forecasts have been scored against their bins"
    )
    alerts: list[Alert] = Field(description="active alerts (raised, not cleared), oldest first")


class LinkAnswer(LinkDetail):
    """One link, and how old its newest data is."""

    age_s: float = Field(ge=0, description="seconds since the link's newest data was produced")


class LinksPage(BaseModel):
    """A page of links, sorted by id, after the filters."""

    total: int = Field(ge=0, description="links that pass the filters")
    offset: int
    limit: int
    age_s: float | None = Field(description="seconds since the view last changed")
    links: list[LinkAnswer]


class LinkHistory(BaseModel):
    """A link's most recent windows, oldest first."""

    link: str
    age_s: float = Field(ge=0)
    n: int = Field(ge=0, description="windows returned")
    windows: list[WindowRecord]


class AlertsAnswer(BaseModel):
    """Active alerts (raised, not cleared) and the most recent alert records."""

    age_s: float | None = Field(description="seconds since the newest alert record was produced")
    active: list[Alert] = Field(description="oldest first")
    recent: list[Alert] = Field(description="raised and cleared records, newest first")


class ModelsAnswer(BaseModel):
    """The current model of each kind, as last announced, with its evaluation metrics."""

    age_s: float | None = Field(description="seconds since the newest announcement was produced")
    models: list[ModelAnnouncement]

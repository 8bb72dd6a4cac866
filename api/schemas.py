"""What the API answers with. Input and stream records come from streams.schemas."""

from typing import Literal

from pydantic import BaseModel

from streams.schemas import LinkState


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    ready: bool
    reason: str
    links: int


class LinkAnswer(BaseModel):
    """One link's latest state and how old it is (processing time since the worker wrote it)."""

    link: str
    age_s: float
    state: LinkState


class LinksPage(BaseModel):
    """A page of links, sorted by id."""

    total: int
    offset: int
    limit: int
    links: list[LinkAnswer]
    view_age_s: float | None  # seconds since the view last changed; None before any state


class Problem(BaseModel):
    detail: str


class TokenAnswer(BaseModel):
    """An access token (RFC 6749 section 5.1)."""

    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str

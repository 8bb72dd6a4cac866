"""How `linkcast api` runs uvicorn: its HTTP/1.1 parser and the bound on a request's head.

uvicorn's httptools parser bounds neither the size nor the number of request
headers: a 10 MB header is read whole, held, and answered. Its h11 parser
buffers at most ``h11_max_incomplete_event_size`` bytes of an unfinished
request line and headers; past that it answers 400 and closes the connection
(h11 calls it "Receive buffer too long"; its hint, 431, is not what uvicorn
sends). Bodies are not bounded by it: api.limits does that.
"""

from typing import Any

from api.settings import ApiSettings


def uvicorn_options(settings: ApiSettings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` that choose the parser and bound the head."""
    if settings.api_http_parser == "httptools":
        return {"http": "httptools"}
    return {"http": "h11", "h11_max_incomplete_event_size": settings.api_header_max_bytes}

"""The answer to a request FastAPI could not validate: 422 with one reason per error.

A body sent to a JSON route with another Content-Type is answered 415.

FastAPI's own handler echoes each error's ``input``: the client's raw body
bytes when the body was not sent as JSON (not always UTF-8), or a number
Python's JSON reader took but JSON cannot hold (NaN, Infinity), and its
answer then failed to encode: a 500. This one answers the same shape
(``{"detail": [{"loc", "msg", "type"}, ...]}``, FastAPI's documented 422)
without the input, and with every string made safe to encode and bounded, so
that nothing a client sends can make the answer fail.
"""

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

#: Longest string kept in a reason (a field name comes from the client and may be huge).
TEXT_MAX = 200
#: The 415's reason: a JSON route was sent a body of another type.
NOT_JSON = "the body must be JSON: send it with Content-Type: application/json"
#: Most errors answered; the rest are counted in a last one.
ERRORS_MAX = 20


def safe_text(text: object) -> str:
    """``text`` as a string that encodes to UTF-8 (unpaired surrogates and other
    unencodable characters escaped) and is at most about TEXT_MAX characters."""
    whole = str(text)
    cut = whole[:TEXT_MAX].encode("utf-8", "backslashreplace").decode("utf-8")
    return cut if len(whole) <= TEXT_MAX else f"{cut}... ({len(whole)} characters)"


def _loc_part(part: object) -> str | int:
    if isinstance(part, int) and not isinstance(part, bool):
        return part
    return safe_text(part)


def reason(error: Mapping[str, Any]) -> dict[str, Any]:
    """One validation error as location, message and type, without the input."""
    msg = safe_text(error.get("msg", "invalid"))
    kind = safe_text(error.get("type", "value_error"))
    ctx = error.get("ctx") or {}
    if kind == "json_invalid" and "error" in ctx:
        # FastAPI says only "JSON decode error"; the parser's reason and position help more.
        msg = f"the body is not valid JSON ({safe_text(ctx['error'])}); send it as JSON"
    return {"loc": [_loc_part(p) for p in error.get("loc", ())], "msg": msg, "type": kind}


def reasons(errors: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """At most ERRORS_MAX reasons; a last one says how many more there were."""
    kept = [reason(e) for e in errors[:ERRORS_MAX]]
    if len(errors) > ERRORS_MAX:
        more = len(errors) - ERRORS_MAX
        kept.append({"loc": [], "msg": f"and {more} more errors", "type": "too_many_errors"})
    return kept


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """The 422 for a RequestValidationError (installed with ``app.add_exception_handler``
    for that class only; Starlette types a handler as taking any exception)."""
    if not isinstance(exc, RequestValidationError):
        raise exc
    if isinstance(exc.body, bytes):  # FastAPI reads a JSON body as JSON only when typed so
        return JSONResponse(status_code=415, content={"detail": NOT_JSON})
    return JSONResponse(status_code=422, content={"detail": reasons(list(exc.errors()))})

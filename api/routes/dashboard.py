"""GET /: the dashboard, one static page (HTML, JS, CSS) served from the package, no build step.

Loading the page needs no token; everything it shows comes from the API with
a token that the page asks for (client id and secret -> POST /v1/token) and
keeps in memory only. The page's Content-Security-Policy allows only its own
script and style and connections back to this origin.
"""

from importlib import resources

from fastapi import APIRouter, HTTPException, Response, status
from fastapi.responses import HTMLResponse

from api.context import ApiContext

ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _read(name: str) -> bytes:
    return (resources.files("api") / "dashboard" / name).read_bytes()


def router(ctx: ApiContext) -> APIRouter:
    routes = APIRouter(tags=["dashboard"])
    page = _read("index.html")
    assets = {name: _read(name) for name in ASSETS}

    @routes.get("/", response_class=HTMLResponse)
    async def index() -> Response:
        """The dashboard page (no token needed to load it; it asks for client credentials)."""
        return HTMLResponse(page, headers=HEADERS)

    @routes.get("/dashboard/{asset}", include_in_schema=False)
    async def asset(asset: str) -> Response:
        if asset not in assets:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dashboard file {asset!r}")
        return Response(assets[asset], media_type=ASSETS[asset], headers=HEADERS)

    return routes

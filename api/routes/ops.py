"""GET /health, /ready and /metrics: for orchestrators and Prometheus, no token."""

from fastapi import APIRouter, Response, status

from api.context import ApiContext
from api.metrics import CONTENT_TYPE
from api.schemas import Health, Ready


def router(ctx: ApiContext) -> APIRouter:
    routes = APIRouter(tags=["ops"])
    view = ctx.view

    @routes.get("/health", response_model=Health)
    async def health() -> Health:
        """The process is alive (it says nothing of the broker: see /ready)."""
        return Health(status="ok")

    @routes.get(
        "/ready",
        response_model=Ready,
        responses={503: {"model": Ready, "description": "not ready; the reason says why"}},
    )
    async def ready(response: Response) -> Ready:
        """200 when the broker answers and the view has caught up; 503 with the reason otherwise."""
        readiness = view.readiness()
        if not readiness.ready:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Ready(ready=readiness.ready, reason=readiness.reason, links=len(view.state.links))

    @routes.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    )
    async def metrics() -> Response:
        """Prometheus metrics: requests, latency, the view's age and lag, stream clients, drops."""
        return Response(ctx.metrics.render(), media_type=CONTENT_TYPE)

    return routes

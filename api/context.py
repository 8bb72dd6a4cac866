"""What every route module is built with: settings, security, the view and the metrics.

A route module is a function ``router(ctx: ApiContext) -> APIRouter``; the
app (api.app) includes each. A new group of routes (predictions, say) is a
new module of that shape and one line in ``api.app.ROUTERS``.
"""

from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, status

from api.guard import Guard
from api.metrics import ApiMetrics
from api.schemas import Problem
from api.security import Security
from api.settings import ApiSettings
from api.view import MaterializedView

Responses = dict[int | str, dict[str, Any]]

#: OpenAPI entries of the errors a route may answer with, to add to ``responses=``.
NOT_READY: Responses = {
    503: {"model": Problem, "description": "the view is not ready (see /ready); retry later"}
}
GUARDED: Responses = {
    401: {"model": Problem, "description": "no valid bearer token"},
    403: {"model": Problem, "description": "the token lacks the scope"},
    429: {"model": Problem, "description": "too many requests; see Retry-After"},
}
NOT_FOUND: Responses = {404: {"model": Problem, "description": "no such link in the view"}}

NOT_READY_RETRY_S = "5"


@dataclass(frozen=True)
class ApiContext:
    settings: ApiSettings
    security: Security
    guard: Guard
    view: MaterializedView
    metrics: ApiMetrics

    def require_ready(self) -> None:
        """Raise 503 (with the reason and Retry-After) while the view is not ready."""
        readiness = self.view.readiness()
        if not readiness.ready:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                readiness.reason,
                headers={"Retry-After": NOT_READY_RETRY_S},
            )

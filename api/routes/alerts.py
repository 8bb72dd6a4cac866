"""GET /v1/alerts: the active alerts and the most recent alert records."""

import time
from typing import Literal

from fastapi import APIRouter, Query

from api.context import GUARDED, NOT_READY, ApiContext
from api.schemas import AlertsAnswer
from streams.schemas import Alert


def router(ctx: ApiContext) -> APIRouter:
    routes = APIRouter(tags=["alerts"], dependencies=[ctx.guard.requires("read")])
    state = ctx.view.state
    recent_max = ctx.settings.view_recent_alerts

    @routes.get("/v1/alerts", response_model=AlertsAnswer, responses={**NOT_READY, **GUARDED})
    async def alerts(
        link: str | None = Query(None, max_length=200, description="only this link's alerts"),
        severity: Literal["info", "warning", "critical"] | None = Query(
            None, description="only alerts of this severity"
        ),
        recent: int = Query(
            min(50, recent_max),
            ge=0,
            le=recent_max,
            description=f"recent records to return (at most {recent_max} are kept)",
        ),
    ) -> AlertsAnswer:
        """Active alerts (raised and not yet cleared), oldest first, and the newest alert
        records, raised and cleared, newest first."""
        ctx.require_ready()
        active = [
            a
            for a in sorted(state.active_alerts.values(), key=lambda a: (a.ts, a.id))
            if (link is None or a.link == link) and (severity is None or a.severity == severity)
        ]
        newest: list[Alert] = []
        for a in reversed(state.recent_alerts):
            if len(newest) >= recent:
                break
            if (link is None or a.link == link) and (severity is None or a.severity == severity):
                newest.append(a)
        return AlertsAnswer(
            age_s=state.age_s(state.alerts_produced_at_s, time.time()),
            active=active,
            recent=newest,
        )

    return routes

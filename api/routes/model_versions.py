"""GET /v1/models: the models in use, as last announced on the models topic."""

import time

from fastapi import APIRouter

from api.context import GUARDED, NOT_READY, ApiContext
from api.schemas import ModelsAnswer


def router(ctx: ApiContext) -> APIRouter:
    routes = APIRouter(tags=["models"], dependencies=[ctx.guard.requires("read")])
    state = ctx.view.state

    @routes.get("/v1/models", response_model=ModelsAnswer, responses={**NOT_READY, **GUARDED})
    async def models() -> ModelsAnswer:
        """The current model of each kind (classifier, forecaster): version, path and its
        evaluation metrics. Empty until a model has been announced."""
        ctx.require_ready()
        return ModelsAnswer(
            age_s=state.age_s(state.models_produced_at_s, time.time()),
            models=[state.models[k] for k in sorted(state.models)],
        )

    return routes

"""The API's route groups: each module is ``router(ctx: ApiContext) -> APIRouter``."""

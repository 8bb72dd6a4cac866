"""The API's materialized view: the view state, fed by the follower, passing updates to the hub.

Each replica builds its own view at start from the output topics (see
api.follower for where it starts reading and when it is ready, api.viewstate
for what each topic does) and keeps following them. It never touches the
worker's tables.
"""

from api.follower import Feed, Follower, Readiness
from api.hub import Hub
from api.settings import ApiSettings
from api.viewstate import Role, ViewState
from streams.topics import Topics

__all__ = ["MaterializedView", "Readiness"]


class MaterializedView:
    """The state the routes read, kept current by ``follower`` (None: fed by hand, always ready)."""

    def __init__(self, state: ViewState, hub: Hub, follower: Follower | None = None) -> None:
        self.state = state
        self.hub = hub
        self.follower = follower

    @classmethod
    def following(cls, settings: ApiSettings, state: ViewState, hub: Hub) -> "MaterializedView":
        """A view of the settings' topics, read and followed from Kafka."""
        topics = Topics.from_settings(settings)
        feeds = [
            Feed("link-state", topics.link_state, from_beginning=True),
            Feed("models", topics.models, from_beginning=True),
            Feed("windows", topics.windows, from_beginning=False),
            Feed("forecasts", topics.forecasts, from_beginning=False),
            Feed("alerts", topics.alerts, from_beginning=False),
        ]
        view = cls(state, hub)
        view.follower = Follower(
            settings.kafka_bootstrap,
            feeds,
            view.apply,
            lookback_s=settings.view_lookback_s,
            broker_check_s=settings.broker_check_s,
        )
        return view

    async def start(self, timeout_s: float) -> None:
        if self.follower is not None:
            await self.follower.start(timeout_s)

    async def stop(self) -> None:
        if self.follower is not None:
            await self.follower.stop()

    def readiness(self) -> Readiness:
        if self.follower is None:
            return Readiness(True, "ok (a view fed by hand)")
        return self.follower.readiness()

    def apply(
        self, role: Role, key: bytes | None, value: bytes | None, produced_at_s: float | None = None
    ) -> None:
        """Apply one message to the state and pass what it says on to the live stream."""
        update = self.state.apply(role, key, value, produced_at_s)
        if update is not None:
            self.hub.publish(update)

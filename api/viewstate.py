"""The view's state: what the API knows, built from the records of the output topics.

Pure and synchronous: ``apply`` takes one Kafka message (topic role, key,
value, the message's timestamp) and updates plain dicts and bounded deques.
The Kafka follower (api.follower) feeds it in production; tests and the
benchmark may feed it directly.

What each topic does to it:

- ``link-state`` (compacted): the link's latest LinkState; a tombstone (no
  value) forgets the link and its active alerts.
- ``windows``: the link's newest window, and its history (the last
  ``history_windows``); forecasts are scored against each new bin.
- ``forecasts``: the link's newest forecast.
- ``alerts``: ``raised`` makes an alert active, ``cleared`` (same id) ends
  it; every record also goes to the bounded list of recent alert records.
- ``models`` (compacted): the current announcement of each kind.

A record that does not validate is counted per topic and skipped.
"""

import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError

from api.linkentry import LinkEntry
from streams.schemas import Alert, Forecast, LinkState, ModelAnnouncement, WindowRecord

log = logging.getLogger(__name__)

Role = Literal["link-state", "windows", "forecasts", "alerts", "models"]
ROLES: tuple[Role, ...] = ("link-state", "windows", "forecasts", "alerts", "models")
StreamKind = Literal["window", "forecast", "alert"]
STREAM_KINDS: tuple[StreamKind, ...] = ("window", "forecast", "alert")


@dataclass(frozen=True)
class Update:
    """A record the live stream passes on: its kind, link and JSON."""

    kind: StreamKind
    link: str
    data: bytes


class ViewState:
    def __init__(
        self,
        history_windows: int = 60,
        recent_alerts: int = 200,
        capacities: Mapping[str, float] | None = None,
    ) -> None:
        self.history_windows = history_windows
        self.capacities = dict(capacities or {})
        self.links: dict[str, LinkEntry] = {}
        self.active_alerts: dict[str, Alert] = {}
        self.recent_alerts: deque[Alert] = deque(maxlen=recent_alerts)
        self.models: dict[str, ModelAnnouncement] = {}
        self.applied: dict[str, int] = dict.fromkeys(ROLES, 0)
        self.invalid: dict[str, int] = dict.fromkeys(ROLES, 0)
        self.last_update_s: float | None = None  # processing time the view last changed
        self.alerts_produced_at_s: float | None = None
        self.models_produced_at_s: float | None = None
        self._names: list[str] | None = None

    def names(self) -> list[str]:
        """Link ids, sorted (cached until a link comes or goes)."""
        if self._names is None:
            self._names = sorted(self.links)
        return self._names

    def entry(self, link: str) -> LinkEntry:
        found = self.links.get(link)
        if found is None:
            found = LinkEntry.empty(link, self.history_windows, self.capacities.get(link))
            self.links[link] = found
            self._names = None
        return found

    def apply(
        self, role: Role, key: bytes | None, value: bytes | None, produced_at_s: float | None = None
    ) -> Update | None:
        """Apply one message of the topic with ``role``; return what the live stream passes on.

        ``produced_at_s`` is the message's timestamp (processing time: the worker
        stamps its outputs when it makes them); now when not given.
        """
        at = time.time() if produced_at_s is None else produced_at_s
        if value is None:
            self._tombstone(role, key)
            return None
        try:
            update = self._apply(role, value, at)
        except ValidationError as exc:
            self.invalid[role] += 1
            if self.invalid[role] == 1 or self.invalid[role] % 1000 == 0:
                log.warning(
                    "skipping an invalid %s record (%d so far): %s",
                    role,
                    self.invalid[role],
                    exc.errors()[0]["msg"],
                )
            return None
        self.applied[role] += 1
        self.last_update_s = time.time()
        return update

    def _apply(self, role: Role, value: bytes, at: float) -> Update | None:
        if role == "link-state":
            state = LinkState.model_validate_json(value)
            self.entry(state.link).set_state(state)
            return None
        if role == "windows":
            window = WindowRecord.model_validate_json(value)
            data = window.model_dump_json().encode()
            self.entry(window.link).add_window(window, data)
            return Update("window", window.link, data)
        if role == "forecasts":
            forecast = Forecast.model_validate_json(value)
            self.entry(forecast.link).set_forecast(forecast, at)
            return Update("forecast", forecast.link, forecast.model_dump_json().encode())
        if role == "alerts":
            alert = Alert.model_validate_json(value)
            self._alert(alert, at)
            return Update("alert", alert.link, alert.model_dump_json().encode())
        model = ModelAnnouncement.model_validate_json(value)
        self.models[model.kind] = model
        self.models_produced_at_s = max(self.models_produced_at_s or 0.0, at)
        return None

    def _alert(self, alert: Alert, at: float) -> None:
        if alert.state == "raised":
            self.active_alerts[alert.id] = alert
        else:
            self.active_alerts.pop(alert.id, None)
        self.recent_alerts.append(alert)
        self.alerts_produced_at_s = max(self.alerts_produced_at_s or 0.0, at)
        self.entry(alert.link).set_alert(alert, at)

    def _tombstone(self, role: Role, key: bytes | None) -> None:
        if key is None:
            return
        name = key.decode(errors="replace")
        if role == "link-state" and self.links.pop(name, None) is not None:
            self._names = None
            for alert_id in [i for i, a in self.active_alerts.items() if a.link == name]:
                del self.active_alerts[alert_id]
            self.last_update_s = time.time()
        elif role == "models" and self.models.pop(name, None) is not None:
            self.last_update_s = time.time()

    def age_s(self, produced_at_s: float | None, now_s: float) -> float | None:
        """Seconds from ``produced_at_s`` to ``now_s`` (never negative); None for None."""
        return None if produced_at_s is None else max(0.0, now_s - produced_at_s)

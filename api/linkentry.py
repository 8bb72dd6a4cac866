"""One link in the view: its latest state, window, forecast and alerts, and its answer's JSON.

The answer of ``GET /v1/links/{link}`` is serialized once per change of the
link (``detail_json``) and reused until the next change; only ``age_s``,
which moves with the clock, is written per request (``answer_json``).
"""

from collections import deque
from dataclasses import dataclass, field

from api.capacities import utilisation
from api.classmix import class_mix_of, dominant_class
from api.schemas import LinkDetail
from api.scoring import ForecastScorer
from streams.schemas import Alert, Forecast, LinkState, TrafficClass, WindowRecord


@dataclass(eq=False)
class LinkEntry:
    link: str
    history: deque[bytes]  # JSON of the newest windows, oldest first
    capacity_bps: float | None = None
    state: LinkState | None = None
    window: WindowRecord | None = None
    forecast: Forecast | None = None
    alerts: dict[str, Alert] = field(default_factory=dict)  # active, by alert id
    scorer: ForecastScorer = field(default_factory=ForecastScorer)
    produced_at_s: float = 0.0  # processing time the newest data of the link was produced
    class_mix: dict[str, float] | None = None
    dominant_class: TrafficClass | None = None
    utilisation: float | None = None
    _last_bin_end_s: float = float("-inf")
    _body: bytes | None = None

    @classmethod
    def empty(cls, link: str, history_windows: int, capacity_bps: float | None) -> "LinkEntry":
        return cls(link, deque(maxlen=history_windows), capacity_bps)

    # ---- changes (each marks the cached answer stale) ------------------------

    def set_state(self, state: LinkState) -> None:
        self.state = state
        if state.last_window is not None:
            self._take_window(state.last_window, None)
        self._changed(state.updated_at_s)

    def add_window(self, window: WindowRecord, as_json: bytes) -> None:
        self._take_window(window, as_json)
        self._changed(window.emitted_at_s)

    def set_forecast(self, forecast: Forecast, produced_at_s: float) -> None:
        if self.forecast is None or forecast.made_at_s >= self.forecast.made_at_s:
            self.forecast = forecast
        self.scorer.add_forecast(forecast)
        self._changed(produced_at_s)

    def set_alert(self, alert: Alert, produced_at_s: float) -> None:
        if alert.state == "raised":
            self.alerts[alert.id] = alert
        else:
            self.alerts.pop(alert.id, None)
        self._changed(produced_at_s)

    def _take_window(self, window: WindowRecord, as_json: bytes | None) -> None:
        """Keep ``window`` if it is newer than every bin seen (a redelivered one is not)."""
        if window.bin_end_s <= self._last_bin_end_s:
            return
        self._last_bin_end_s = window.bin_end_s
        self.window = window
        self.history.append(as_json if as_json is not None else window.model_dump_json().encode())
        self.scorer.add_bin(window.bin_end_s, window.bps)
        self.class_mix = class_mix_of(window)
        self.dominant_class = dominant_class(self.class_mix)
        self.utilisation = utilisation(window.window_bps, self.capacity_bps)

    def _changed(self, produced_at_s: float) -> None:
        self.produced_at_s = max(self.produced_at_s, produced_at_s)
        self._body = None

    # ---- answers -------------------------------------------------------------

    def detail(self) -> LinkDetail:
        errors = self.scorer.summary()
        return LinkDetail(
            link=self.link,
            state=self.state,
            window=self.window,
            capacity_bps=self.capacity_bps,
            utilisation=self.utilisation,
            class_mix=self.class_mix,
            dominant_class=self.dominant_class,
            forecast=self.forecast,
            forecast_error=errors or None,
            alerts=sorted(self.alerts.values(), key=lambda a: (a.ts, a.id)),
        )

    def detail_json(self) -> bytes:
        """The link's LinkDetail as JSON, serialized once per change."""
        if self._body is None:
            self._body = self.detail().model_dump_json().encode()
        return self._body

    def answer_json(self, now_s: float) -> bytes:
        """The LinkAnswer JSON: the cached detail with this moment's ``age_s`` put in front."""
        age = max(0.0, now_s - self.produced_at_s)
        return b'{"age_s":%.3f,%s' % (age, self.detail_json()[1:])

"""Per-link alerts, raised and cleared on closed bins and forecasts: pure, no Faust or Kafka.

Three conditions, each needing ``bins`` consecutive closed bins to raise and
as many without it to clear, so one noisy bin neither raises nor clears:

* ``attack_share``: the share of a bin's bytes the classifier called attack is
  at least the threshold (critical from 90 %).
* ``forecast_over_capacity``: the newest forecast's median at some horizon is
  above the link's capacity (from the capacities file; critical when even the
  interval's lower bound is above it).
* ``unexpected_change``: the bin's actual bits/s fell outside the interval of
  the +1 bin forecast made for it.

An alert's id is the link, the condition and the event time it was raised
at, so a replay raises the same ids; its ``cleared`` record has the same id.
Times in alerts are event time (the bin's end).
"""

from dataclasses import dataclass, field
from typing import Any, Literal

from streams.schemas import Alert

Condition = Literal["attack_share", "forecast_over_capacity", "unexpected_change"]
Severity = Literal["info", "warning", "critical"]


@dataclass
class _Watch:
    """One condition of one link: the current run of bins with it (or without it, when up)."""

    run: int = 0
    raised_at_s: float | None = None  # event time it was raised; None while not raised


@dataclass
class LinkAlerts:
    """The alert conditions of one link."""

    bins: int
    watches: dict[str, _Watch] = field(default_factory=dict)

    def observe(
        self,
        link: str,
        condition: Condition,
        holds: bool,
        at_s: float,
        severity: Severity,
        evidence: dict[str, float],
        model_version: str | None = None,
    ) -> Alert | None:
        """Count one bin for ``condition``; the Alert to publish when it is raised or cleared."""
        watch = self.watches.setdefault(condition, _Watch())
        up = watch.raised_at_s is not None
        watch.run = watch.run + 1 if holds != up else 0
        if watch.run < self.bins:
            return None
        watch.run = 0
        if not up:
            watch.raised_at_s = at_s
            state: Literal["raised", "cleared"] = "raised"
        else:
            state = "cleared"
        alert_id = f"{link}:{condition}:{watch.raised_at_s:.6f}"
        if state == "cleared":
            watch.raised_at_s = None
        return Alert(
            id=alert_id,
            link=link,
            state=state,
            severity=severity if state == "raised" else "info",
            reason=condition,
            evidence=evidence,
            ts=at_s,
            model_version=model_version,
        )

    @property
    def active(self) -> list[str]:
        return sorted(c for c, w in self.watches.items() if w.raised_at_s is not None)

    def to_dict(self) -> dict[str, Any]:
        return {c: [w.run, w.raised_at_s] for c, w in self.watches.items()}

    @classmethod
    def from_dict(cls, bins: int, data: dict[str, Any] | None) -> "LinkAlerts":
        alerts = cls(bins)
        for condition, (run, raised_at_s) in (data or {}).items():
            alerts.watches[condition] = _Watch(
                int(run), None if raised_at_s is None else float(raised_at_s)
            )
        return alerts


def attack_share(class_mix: dict[str, tuple[int, int]], total_bytes: int) -> float:
    """The share of a bin's bytes classified attack (0 for an empty bin)."""
    if total_bytes <= 0:
        return 0.0
    return class_mix.get("attack", (0, 0))[0] / total_bytes

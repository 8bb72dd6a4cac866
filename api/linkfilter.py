"""Which links a links query keeps: by dominant class, alerting, and utilisation bounds.

- ``traffic_class``: the dominant class (largest byte share) of the class
  mix of the link's newest window (see api.classmix); a link whose newest
  window has no mix (classification off, an empty bin) is left out.
- ``alerting``: True keeps links with at least one active alert (raised and
  not cleared); False keeps links with none.
- ``min_utilisation`` / ``max_utilisation`` (inclusive): the newest window's
  ``window_bps`` over the link's capacity from the capacities file. A link
  with no known capacity has no utilisation and is left out by either bound.

Filters combine with AND; no filter keeps every link.
"""

from dataclasses import dataclass

from api.linkentry import LinkEntry
from streams.schemas import TrafficClass


@dataclass(frozen=True)
class LinkFilter:
    traffic_class: TrafficClass | None = None
    alerting: bool | None = None
    min_utilisation: float | None = None
    max_utilisation: float | None = None

    @property
    def keeps_all(self) -> bool:
        return self == LinkFilter()

    def keeps(self, entry: LinkEntry) -> bool:
        if self.traffic_class is not None and entry.dominant_class != self.traffic_class:
            return False
        if self.alerting is not None and bool(entry.alerts) != self.alerting:
            return False
        if self.min_utilisation is not None or self.max_utilisation is not None:
            u = entry.utilisation
            if u is None:
                return False
            if self.min_utilisation is not None and u < self.min_utilisation:
                return False
            if self.max_utilisation is not None and u > self.max_utilisation:
                return False
        return True

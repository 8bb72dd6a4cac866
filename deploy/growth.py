"""Whether a series sampled over a soak run keeps growing: the soak's verdict, pure maths.

A series *keeps growing* when, over its judged part (the samples from half the
run on; the first half is warm-up: links appearing, histories filling,
allocators and caches settling), both hold:

* its least-squares slope is above ``allowed_per_min``, and
* the mean of the judged part's last third is above the mean of its first
  third by more than ``margin``.

The slope alone is fooled by noise and by one late step; the two means alone
by a dip in the middle. A series that grew during warm-up and then stays flat
passes; one that climbs steadily to the end fails.
"""

from collections.abc import Sequence
from dataclasses import dataclass

MIN_JUDGED = 6  # samples needed in the judged half to fit a slope worth reading


@dataclass(frozen=True)
class Trend:
    """The judged half of one series (units of the series, minutes of the run)."""

    slope_per_min: float
    early: float  # mean of the judged part's first third
    late: float  # mean of its last third
    samples: int
    growing: bool


def judged(times_s: Sequence[float], values: Sequence[float]) -> list[tuple[float, float]]:
    """The samples from half the run on, as (time in s, value)."""
    if len(times_s) != len(values):
        raise ValueError(f"{len(times_s)} times for {len(values)} values")
    if not times_s:
        return []
    half_s = times_s[0] + (times_s[-1] - times_s[0]) / 2
    return [(t, v) for t, v in zip(times_s, values, strict=True) if t >= half_s]


def slope_per_min(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (time in s, value) points, per minute."""
    n = len(points)
    if n < 2:
        raise ValueError("a slope needs two points or more")
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        raise ValueError("the points are all at one time")
    return 60.0 * sum((t - mean_t) * (v - mean_v) for t, v in points) / spread


def trend(
    times_s: Sequence[float], values: Sequence[float], *, allowed_per_min: float, margin: float
) -> Trend:
    """Judge one series (see the module's docstring); ``allowed_per_min`` and ``margin``
    are in the series' units."""
    points = judged(times_s, values)
    if len(points) < MIN_JUDGED:
        raise ValueError(
            f"{len(points)} samples in the judged half of the run; {MIN_JUDGED} are needed "
            "(sample more often or run longer)"
        )
    third = len(points) // 3
    early = sum(v for _, v in points[:third]) / third
    late = sum(v for _, v in points[-third:]) / third
    slope = slope_per_min(points)
    growing = slope > allowed_per_min and late - early > margin
    return Trend(slope, early, late, len(points), growing)

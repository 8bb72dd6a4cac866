"""Bandwidth series: one link's bins over time, cut into forecaster windows.

A ``Series`` is what the stream's bin code produces for one link (or what a
public dataset gives at a coarser step): bins of equal width, oldest first.
``windows`` cuts it into the examples the forecaster learns from and is judged
on: the last T bins as input, the bins ``h`` steps after the last one as the
targets, for each horizon h.
"""

from dataclasses import dataclass

import numpy as np

from models.classes import CLASSES
from models.exceptions import DataError
from models.features import series_inputs


@dataclass(frozen=True)
class Series:
    """One link's bins. ``bps`` is in the series' own unit per second (bits/s for linkcast)."""

    name: str
    source: str
    bin_s: float
    start_s: np.ndarray  # (n,) start of each bin, epoch s
    bps: np.ndarray  # (n,)
    packets: np.ndarray | None = None  # (n,)
    flows: np.ndarray | None = None  # (n,)
    class_bytes: np.ndarray | None = None  # (n, len(CLASSES))

    def __post_init__(self) -> None:
        n = len(self.bps)
        if len(self.start_s) != n:
            raise DataError(f"series {self.name}: {len(self.start_s)} times for {n} values")
        if not np.all(np.isfinite(self.bps)) or np.any(self.bps < 0):
            raise DataError(f"series {self.name}: values must be finite and not negative")
        if self.class_bytes is not None and self.class_bytes.shape != (n, len(CLASSES)):
            raise DataError(
                f"series {self.name}: class_bytes must have shape ({n}, {len(CLASSES)})"
            )

    def __len__(self) -> int:
        return len(self.bps)

    def part(self, lo: int, hi: int) -> "Series":
        """Bins [lo, hi) as a series of their own."""
        cut = slice(lo, hi)

        def opt(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[cut]

        return Series(
            self.name,
            self.source,
            self.bin_s,
            self.start_s[cut],
            self.bps[cut],
            opt(self.packets),
            opt(self.flows),
            opt(self.class_bytes),
        )


@dataclass(frozen=True)
class Windows:
    """Forecaster examples cut from one or more series."""

    x: np.ndarray  # (n, T, channels) float32
    level: np.ndarray  # (n,)
    actual: np.ndarray  # (n, H) the bins at each horizon, in the series' unit
    origin: np.ndarray  # (n,) index in its series of each window's last bin
    series: np.ndarray  # (n,) index of its series in the list given

    def __len__(self) -> int:
        return len(self.level)


#: Stretches in time of every data source, as fractions of the source's time span:
#: the forecaster learns on the first, stops early on the second, is judged on the third.
#: The cuts are the same instants for every series of a source, so no series trains on
#: a time another series of the source is judged on (Abilene's total is the sum of its
#: demands).
STRETCHES: dict[str, tuple[float, float]] = {
    "train": (0.0, 0.7),
    "validation": (0.7, 0.8),
    "test": (0.8, 1.0),
    "all": (0.0, 1.0),
}


def source_cuts(many: list["Series"]) -> dict[str, tuple[float, float]]:
    """Per source, the instants where training ends and validation ends (epoch s)."""
    spans: dict[str, tuple[float, float]] = {}
    for s in many:
        lo, hi = spans.get(s.source, (float(s.start_s[0]), float(s.start_s[-1])))
        spans[s.source] = (min(lo, float(s.start_s[0])), max(hi, float(s.start_s[-1])))
    return {
        source: (
            lo + STRETCHES["train"][1] * (hi - lo),
            lo + STRETCHES["validation"][1] * (hi - lo),
        )
        for source, (lo, hi) in spans.items()
    }


def origins(
    s: "Series",
    window_bins: int,
    max_horizon: int,
    stretch: str = "all",
    stride: int = 1,
    cuts: tuple[float, float] | None = None,
) -> np.ndarray:
    """Indexes of the last input bin of the windows of ``stretch`` (see ``source_cuts``).

    Training windows have every target before the training cut; validation
    windows start at or after it and end before the validation cut; test
    windows start at or after that. A window's inputs may reach back before
    its stretch (that is the past, known at the time); its targets never
    reach into another stretch.
    """
    at = np.arange(window_bins - 1, len(s) - max_horizon, stride)
    if stretch == "all" or len(at) == 0:
        return at
    if cuts is None:
        raise ValueError(f"the {stretch} stretch needs the source's cuts (source_cuts)")
    train_end, validation_end = cuts
    origin_s, target_s = s.start_s[at], s.start_s[at + max_horizon]
    if stretch == "train":
        return at[target_s < train_end]
    if stretch == "validation":
        return at[(origin_s >= train_end) & (target_s < validation_end)]
    return at[origin_s >= validation_end]


def windows(
    many: list[Series],
    window_bins: int,
    horizons: tuple[int, ...],
    stretch: str = "all",
    stride: int = 1,
    ends: list[np.ndarray] | None = None,
) -> Windows:
    """The windows of ``stretch`` of every series, ``stride`` bins apart.

    ``ends``, one array per series, chooses the windows' last bins instead.
    """
    parts: list[tuple[np.ndarray, ...]] = []
    cuts = source_cuts(many)
    for k, s in enumerate(many):
        at = (
            ends[k]
            if ends is not None
            else origins(s, window_bins, max(horizons), stretch, stride, cuts[s.source])
        )
        if len(at) == 0:
            continue
        span = at[:, None] + np.arange(-window_bins + 1, 1)[None, :]
        x, level = series_inputs(
            s.bps[span],
            s.start_s[span],
            s.bin_s,
            packets=None if s.packets is None else s.packets[span],
            flows=None if s.flows is None else s.flows[span],
            class_bytes=None if s.class_bytes is None else s.class_bytes[span],
        )
        actual = s.bps[at[:, None] + np.asarray(horizons)[None, :]]
        parts.append((x, level, actual, at, np.full(len(at), k)))
    if not parts:
        raise DataError(
            f"no series is longer than {window_bins} bins plus the longest horizon "
            f"({max(horizons)} bins)"
        )
    return Windows(*(np.concatenate([p[i] for p in parts]) for i in range(5)))

"""A link's class mix: the share of its bytes per traffic class, where a window carries one.

WindowRecord v1 carries no class mix yet. The streams issue adds one to each
closed bin, ``class_mix``: per class, the bytes and flows of the bin (a number
alone is read as bytes). This module reads it when it is there, so the API
shows and filters by class as soon as the worker publishes it, and says
``None`` (unknown) until then. Shares are of bytes; a bin with no bytes falls
back to flows; a bin with neither has no mix.
"""

from collections.abc import Mapping
from typing import Any

from streams.schemas import TrafficClass, WindowRecord

_CLASSES = {c.value for c in TrafficClass}


def class_mix_of(window: WindowRecord | None) -> dict[str, float] | None:
    """Byte shares per class (summing to 1) of ``window``'s class mix, or None if unknown."""
    mix = getattr(window, "class_mix", None)  # not in WindowRecord v1: see the module doc
    if not isinstance(mix, Mapping) or not mix:
        return None
    by_bytes = {str(c): _amount(v, "bytes") for c, v in mix.items() if str(c) in _CLASSES}
    counts = by_bytes
    if sum(by_bytes.values()) <= 0:
        counts = {str(c): _amount(v, "flows") for c, v in mix.items() if str(c) in _CLASSES}
    total = sum(counts.values())
    if total <= 0:
        return None
    return {c: n / total for c, n in sorted(counts.items()) if n > 0}


def dominant_class(shares: Mapping[str, float] | None) -> TrafficClass | None:
    """The class with the largest share (ties: the first by name); None without a mix."""
    if not shares:
        return None
    return TrafficClass(max(sorted(shares), key=lambda c: shares[c]))


def _amount(value: Any, unit: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if unit == "bytes" and value > 0 else 0.0
    raw = value.get(unit) if isinstance(value, Mapping) else getattr(value, unit, None)
    if isinstance(raw, int | float) and not isinstance(raw, bool) and raw > 0:
        return float(raw)
    return 0.0

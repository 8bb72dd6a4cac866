"""A link's class mix: the share of its bytes per traffic class in the newest window's bin.

Each closed bin carries the bytes and flows per class as the classifier saw
its flows (``WindowRecord.class_mix``). Shares are of bytes; a bin whose
flows carried no bytes falls back to flows; a bin with neither, or with no
mix at all (classification off, an empty bin), has no known mix (None).
"""

from collections.abc import Mapping

from streams.schemas import TrafficClass, WindowRecord


def class_mix_of(window: WindowRecord | None) -> dict[str, float] | None:
    """Byte shares per class (summing to 1) of ``window``'s bin, or None if unknown."""
    if window is None or not window.class_mix:
        return None
    counts = {c.value: n.bytes for c, n in window.class_mix.items()}
    if sum(counts.values()) <= 0:
        counts = {c.value: n.flows for c, n in window.class_mix.items()}
    total = sum(counts.values())
    if total <= 0:
        return None
    return {c: n / total for c, n in sorted(counts.items()) if n > 0}


def dominant_class(shares: Mapping[str, float] | None) -> TrafficClass | None:
    """The class with the largest share (ties: the first by name); None without a mix."""
    if not shares:
        return None
    return TrafficClass(max(sorted(shares), key=lambda c: shares[c]))

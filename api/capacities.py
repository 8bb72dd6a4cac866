"""Link capacities: the bits/s each link can carry, from a JSON file, for utilisation.

The file is one object, link id -> capacity in bits/s (a positive finite
number)::

    {"edge-1": 1e9, "core/ge-0/0/1": 10e9}

A link not in the file has no known capacity and so no utilisation.
"""

from streams.capacities import CapacitiesError, load_capacities

__all__ = ["CapacitiesError", "load_capacities", "utilisation"]


def utilisation(window_bps: float | None, capacity_bps: float | None) -> float | None:
    """``window_bps / capacity_bps``, or None when either is unknown."""
    if window_bps is None or capacity_bps is None:
        return None
    return window_bps / capacity_bps

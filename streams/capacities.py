"""Link capacities: the bits/s each link can carry, from a JSON file (worker and API read it).

The file is one object, link id -> capacity in bits/s (a positive finite
number)::

    {"edge-1": 1e9, "core/ge-0/0/1": 10e9}

A link not in the file has no known capacity: no utilisation, no capacity alert.
"""

import json
import math
from pathlib import Path

from streams.exceptions import LinkcastError


class CapacitiesError(LinkcastError):
    """The link capacities file is missing or wrong."""


def load_capacities(path: Path | None) -> dict[str, float]:
    """The capacities in ``path`` (none for None); CapacitiesError says what is wrong."""
    if path is None:
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CapacitiesError(
            f"cannot read the link capacities file {path}: {exc.strerror}"
        ) from None
    except json.JSONDecodeError as exc:
        raise CapacitiesError(f"the link capacities file {path} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise CapacitiesError(
            f'the link capacities file {path} must be one object {{"<link>": <bits/s>, ...}}'
        )
    out: dict[str, float] = {}
    for link, bps in document.items():
        ok = isinstance(bps, int | float) and not isinstance(bps, bool)
        if not ok or not math.isfinite(bps) or bps <= 0:
            raise CapacitiesError(
                f"the link capacities file {path}: link {link!r} has capacity {bps!r}; "
                "give a positive number of bits/s"
            )
        out[link] = float(bps)
    return out

"""What glibc's malloc holds: the bytes it has handed out and the bytes free in its heaps.

Why. A worker's resident memory (RSS) is not what it uses. glibc gives memory
back to the system only from the top of its heap, so blocks freed below a
long-lived one stay resident. In ``linkcast soak`` (10,000 links) the heap came
to hold about as much free memory as memory in use (about 250 MiB of each,
``mallinfo2`` every 10 s) while RSS rose in steps. These figures tell the two
apart: ``linkcast_malloc_in_use_bytes`` growing is memory the worker keeps;
``linkcast_malloc_free_bytes`` growing is, roughly, fragmentation (it includes
the free top of the heap, which glibc does give back). The rest of RSS is
outside malloc: Python's own arenas for small objects, the libraries and the
models.

Where the C library has no ``mallinfo2`` (musl, macOS, glibc before 2.33)
there are no figures and the gauges are not registered. With another
allocator preloaded (jemalloc) the figures describe glibc's nearly unused heap.
"""

import ctypes
import os
from collections.abc import Iterator

from prometheus_client import REGISTRY
from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (2.33 and later), field for field."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",  # bytes the heaps hold from the system (not mmapped blocks)
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",  # bytes in mmapped blocks
            "usmblks",
            "fsmblks",
            "uordblks",  # bytes in use
            "fordblks",  # bytes free in the heaps
            "keepcost",
        )
    ]


def _glibc() -> ctypes.CDLL | None:
    """The process's C library, if it is a glibc with ``mallinfo2``."""
    try:
        libc = ctypes.CDLL(None)
    except (OSError, TypeError):  # TypeError: Windows wants a name
        return None
    if not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2
    return libc


_LIBC = _glibc()


def available() -> bool:
    """Whether this process's C library has glibc's ``mallinfo2``, which this module reads."""
    return _LIBC is not None


def heap_bytes() -> tuple[int, int] | None:
    """(bytes in use, bytes free in the heaps); mmapped blocks count as in use.
    None where the C library is not glibc."""
    if _LIBC is None:
        return None
    info = _LIBC.mallinfo2()
    return info.uordblks + info.hblkhd, info.fordblks


class _HeapCollector(Collector):
    """Both figures from one ``mallinfo2`` call a scrape (it walks the free lists)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        figures = heap_bytes()
        if figures is None:
            return
        in_use, free = figures
        yield GaugeMetricFamily(
            "linkcast_malloc_in_use_bytes",
            "Bytes the C allocator (glibc) has handed out, mmapped blocks included",
            value=in_use,
        )
        yield GaugeMetricFamily(
            "linkcast_malloc_free_bytes",
            "Bytes free inside the C allocator's heaps, held from the system",
            value=free,
        )


#: ``mallopt``'s parameter for the most arenas glibc makes (``M_ARENA_MAX`` in malloc.h)
_M_ARENA_MAX = -8
#: The worker's arenas. glibc gives each new thread an arena of its own, up to eight a
#: core, and each keeps its own free memory, which it gives back to the system only
#: from its top; the worker's threads (RocksDB's, LiteRT's) add theirs to the heap's.
ARENAS = 2


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Ask glibc to make no arena beyond ``arenas`` (those made already stay); False
    where it was not asked: not glibc 2.33 or later, or the environment sets the limit.

    glibc fixes its limit when a thread first needs a new arena once nine exist, so a
    call before the worker starts its threads caps them all (glibc's ``mallopt``
    accepts the setting whatever it then does with it, so there is nothing to check).
    ``MALLOC_ARENA_MAX`` (or the ``glibc.malloc.arena_max`` tunable) in the environment,
    set to anything, wins.

    ``linkcast soak`` (10 minutes, 10,000 links), RSS over the second half: +13.76
    MiB a minute with glibc's own limit; +5.61 with ``MALLOC_ARENA_MAX=2``, two heaps
    in ``malloc_info``; +2.40 with it and the RocksDB settings of ``streams.app``; -2.08
    with those and this call (two heaps). One run each, and runs of the same code
    have differed by several MiB a minute.
    """
    if arenas < 1:
        raise ValueError(f"arenas must be 1 or more, not {arenas}")
    if _LIBC is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    if "glibc.malloc.arena_max" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    _LIBC.mallopt(_M_ARENA_MAX, arenas)
    return True


def register_gauges() -> None:
    """Serve the heaps' figures with the worker's metrics (once a process; glibc only)."""
    if _LIBC is not None:
        REGISTRY.register(_HeapCollector())

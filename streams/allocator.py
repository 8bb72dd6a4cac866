"""What glibc's malloc holds: the bytes it has handed out and the bytes free in its heaps.

Why. A worker's resident memory (RSS) is not what it uses. glibc gives memory
back to the system only from the top of its heap, so blocks freed below a
long-lived one stay resident. In ``linkcast soak`` (10,000 links) the heap came
to hold about as much free memory as memory in use (about 250 MiB of each,
``mallinfo2`` every 10 s) while RSS rose in steps. These figures tell the two
apart: ``linkcast_malloc_in_use_bytes`` growing is memory the worker keeps;
``linkcast_malloc_free_bytes`` growing is fragmentation.

Where the C library is not glibc (musl, macOS) there are no figures and the
gauges are not registered.
"""

import ctypes
from collections.abc import Callable

from prometheus_client import Gauge


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
    except OSError:
        return None
    if not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2
    return libc


_LIBC = _glibc()


def available() -> bool:
    """Whether this process's allocator is glibc's, which this module reads."""
    return _LIBC is not None


def heap_bytes() -> tuple[int, int] | None:
    """(bytes in use, bytes free in the heaps); mmapped blocks count as in use.
    None where the C library is not glibc."""
    if _LIBC is None:
        return None
    info = _LIBC.mallinfo2()
    return info.uordblks + info.hblkhd, info.fordblks


def register_gauges() -> None:
    """Serve the heaps' figures with the worker's metrics (once a process; glibc only)."""
    if _LIBC is None:
        return

    def reading(index: int) -> Callable[[], float]:
        def read() -> float:
            figures = heap_bytes()
            return 0.0 if figures is None else float(figures[index])

        return read

    Gauge(
        "linkcast_malloc_in_use_bytes", "Bytes the C allocator (glibc) has handed out"
    ).set_function(reading(0))
    Gauge(
        "linkcast_malloc_free_bytes",
        "Bytes free inside the C allocator's heaps but held from the system (fragmentation)",
    ).set_function(reading(1))

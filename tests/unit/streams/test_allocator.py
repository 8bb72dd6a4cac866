"""streams.allocator reads this process's own glibc: its figures follow real allocations."""

import platform

import pytest

from streams import allocator
from tests.conftest import skip_or_fail_in_ci

LIBC, LIBC_VERSION = platform.libc_ver()
# mallinfo2 came with glibc 2.33
GLIBC = LIBC == "glibc" and tuple(int(n) for n in LIBC_VERSION.split(".")[:2]) >= (2, 33)
BLOCK = 4096  # below glibc's mmap threshold: these come from the heap


@pytest.fixture
def glibc() -> None:
    if not GLIBC:
        skip_or_fail_in_ci(
            f"the C library is {LIBC} {LIBC_VERSION}; streams.allocator reads glibc 2.33 and later"
        )
    assert allocator.available()


def heap() -> tuple[int, int]:
    figures = allocator.heap_bytes()
    assert figures is not None
    return figures


def test_the_heap_figures_follow_what_is_allocated_and_freed(glibc: None):
    in_use_before, _ = heap()
    blocks = [bytes(BLOCK) + bytes([k % 251]) for k in range(20_000)]  # about 80 MiB
    in_use, _ = heap()
    assert in_use - in_use_before >= 75 << 20
    # one block in 16 kept: they pin the heap, so what is freed stays in it, free
    kept = blocks[15::16]
    del blocks
    in_use_after, free = heap()
    assert in_use - in_use_after >= 70 << 20
    assert free >= 70 << 20
    del kept  # kept alive up to here


def test_one_scrape_gives_both_figures(glibc: None):
    families = {f.name: f.samples[0].value for f in allocator._HeapCollector().collect()}
    assert set(families) == {"linkcast_malloc_in_use_bytes", "linkcast_malloc_free_bytes"}
    assert families["linkcast_malloc_in_use_bytes"] > 1 << 20  # this interpreter, at least

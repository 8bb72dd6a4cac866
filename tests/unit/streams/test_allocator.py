"""streams.allocator reads this process's own glibc: its figures follow real allocations."""

import platform

import pytest

from streams import allocator
from tests.conftest import skip_or_fail_in_ci

GLIBC = platform.libc_ver()[0] == "glibc"
BLOCK = 4096  # below glibc's mmap threshold: these come from the heap


@pytest.fixture
def glibc() -> None:
    if not GLIBC:
        skip_or_fail_in_ci("the C library is not glibc; streams.allocator reads glibc only")
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
    assert len(kept) == 1_250

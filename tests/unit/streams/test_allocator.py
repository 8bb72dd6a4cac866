"""streams.allocator reads this process's own glibc: its figures follow real allocations."""

import os
import platform
import subprocess
import sys

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


#: Run in a fresh interpreter: eight threads alive at once that each allocate (glibc gives
#: each new thread an arena of its own while it may make more), then count the heaps.
ARENAS_SCRIPT = """
import ctypes, sys, tempfile, threading
from streams import allocator
if sys.argv[1] == "limit":
    assert allocator.limit_arenas(2)
def allocate():
    kept.append(bytes(64 << 10))
    alive.wait()  # no thread ends (and hands its arena on) before all have allocated
kept = []
alive = threading.Barrier(8)
threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
with tempfile.NamedTemporaryFile(suffix=".xml") as f:
    fp = libc.fopen(f.name.encode(), b"w")
    libc.malloc_info(0, fp)
    libc.fclose(fp)
    print(open(f.name).read().count("<heap nr="))
"""


def heaps_after_eight_threads(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")}
    done = subprocess.run(
        [sys.executable, "-c", ARENAS_SCRIPT, mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(done.stdout)


def test_limit_arenas_caps_glibcs_arenas(glibc: None):
    assert heaps_after_eight_threads("default") > 2  # an arena a thread, as glibc does
    assert heaps_after_eight_threads("limit") <= 2


@pytest.mark.parametrize(
    ("name", "value"),
    [("MALLOC_ARENA_MAX", "4"), ("GLIBC_TUNABLES", "glibc.malloc.arena_max=4")],
)
def test_the_environments_arena_limit_wins(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch, glibc: None
):
    monkeypatch.setenv(name, value)
    assert not allocator.limit_arenas()
    with pytest.raises(ValueError, match="1 or more"):
        allocator.limit_arenas(0)

"""The worker's process set-up that does not need Kafka."""

import gc
from collections.abc import Iterator

import pytest

from streams.cli import GC_YOUNG_THRESHOLD, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tune_gc_freezes_what_exists_and_collects_the_young_less_often(
    restored_gc: None,
) -> None:
    survivor = [object() for _ in range(10)]  # tracked containers made before the tuning
    middle, oldest = gc.get_threshold()[1:]
    tune_gc()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, middle, oldest)
    # frozen: in no generation a collection walks
    assert gc.is_tracked(survivor)
    assert not any(o is survivor for o in gc.get_objects())

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


class SeenEnoughError(Exception):
    """Raised where the test has seen enough of run_worker."""


def test_the_worker_caps_glibcs_arenas_before_it_builds_the_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import argparse

    import streams.app
    from streams import allocator
    from streams.cli import run_worker

    calls: list[str] = []
    monkeypatch.setattr(allocator, "limit_arenas", lambda: calls.append("limit_arenas"))
    monkeypatch.setattr(allocator, "register_gauges", lambda: None)

    def create_app(settings: object) -> None:
        calls.append("create_app")
        raise SeenEnoughError

    monkeypatch.setattr(streams.app, "create_app", create_app)
    with pytest.raises(SeenEnoughError):
        run_worker(argparse.Namespace())
    assert calls == ["limit_arenas", "create_app"]

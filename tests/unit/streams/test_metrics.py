"""The worker's metrics helpers."""

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from streams.metrics import observe_all

BUCKETS = (0.05, 0.1, 0.5, 1.0, 5.0)
# on bucket bounds, between them, beyond the last; sums exact in binary
VALUES = [0.0, 0.05, 0.0625, 0.1, 0.25, 0.5, 1.0, 1.5, 5.0, 7.0, 0.03125, 64.0]


def exposition(observe) -> bytes:
    registry = CollectorRegistry()
    histogram = Histogram("t_seconds", "test", ["stage"], buckets=BUCKETS, registry=registry)
    observe(histogram.labels(stage="a"))
    return b"\n".join(
        line for line in generate_latest(registry).splitlines() if b"_created" not in line
    )


def test_observe_all_gives_what_observing_each_value_gives():
    def one_by_one(child):
        for value in VALUES:
            child.observe(value)

    expected = exposition(one_by_one)
    assert b't_seconds_bucket{le="0.1",stage="a"} 5.0' in expected
    assert exposition(lambda child: observe_all(child, VALUES)) == expected


def test_observe_all_of_nothing_changes_nothing():
    assert exposition(lambda child: observe_all(child, [])) == exposition(lambda child: None)


class OnlyObserve:
    """A histogram without prometheus_client's internals: each value is observed."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def observe(self, value: float) -> None:
        self.seen.append(value)


def test_observe_all_falls_back_to_observe():
    histogram = OnlyObserve()
    observe_all(histogram, [0.5, 2.0])  # type: ignore[arg-type]
    assert histogram.seen == [0.5, 2.0]


def test_a_histogram_with_labels_must_be_given_a_child():
    registry = CollectorRegistry()
    histogram = Histogram("u_seconds", "test", ["stage"], registry=registry)
    with pytest.raises(ValueError, match="missing label values"):
        observe_all(histogram, [1.0])

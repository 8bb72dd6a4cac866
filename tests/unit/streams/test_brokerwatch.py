"""The broker watch: one line per change of reachability, metrics that add up, and
aiokafka's repeated complaints held to one line per kind per window."""

import logging

import pytest

from streams import metrics
from streams.brokerwatch import BrokerWatch, RepeatFilter


def sample(metric: object) -> float:
    return metric._value.get()  # type: ignore[attr-defined]


def test_an_outage_is_logged_once_then_reminded_then_ended(caplog):
    watch = BrokerWatch("k1:9092", remind_every_s=10)
    outages, seconds = sample(metrics.KAFKA_OUTAGES), sample(metrics.KAFKA_OUTAGE_SECONDS)
    with caplog.at_level(logging.WARNING, logger="streams.brokerwatch"):
        for t in (0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0):
            watch.observe(False, 100.0 + t)
        assert sample(metrics.KAFKA_REACHABLE) == 0
        watch.observe(True, 114.0)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "Kafka at k1:9092 does not answer; records wait in Kafka and in this process "
        "until it does (nothing is dropped)",
        "Kafka at k1:9092 has not answered for 10 s; still waiting",
        "Kafka at k1:9092 answers again after 14 s unreachable; work resumes",
    ]
    assert sample(metrics.KAFKA_REACHABLE) == 1
    assert sample(metrics.KAFKA_OUTAGES) == outages + 1
    assert sample(metrics.KAFKA_OUTAGE_SECONDS) == pytest.approx(seconds + 14.0)


def test_checks_that_answer_log_nothing(caplog):
    watch = BrokerWatch("k1:9092")
    with caplog.at_level(logging.WARNING, logger="streams.brokerwatch"):
        for t in range(5):
            watch.observe(True, float(t))
    assert caplog.records == []


def record(msg: str, created: float, *args: object) -> logging.LogRecord:
    r = logging.LogRecord("aiokafka.conn", logging.ERROR, __file__, 1, msg, args, None)
    r.created = created
    return r


def test_a_repeated_line_passes_once_per_window_and_says_how_many_were_held():
    quiet = RepeatFilter(window_s=10)
    template = "Unable connect to node with id %s: %s"
    passed = [
        quiet.filter(record(template, t, node, "refused"))
        for t, node in [(0, 1), (1, 2), (5, 1), (9.9, 3), (10.0, 1)]
    ]
    assert passed == [True, False, False, False, True]
    last = record(template, 20.0, 2, "refused")
    assert quiet.filter(last)
    assert last.getMessage() == "Unable connect to node with id 2: refused"
    held = record(template, 10.5, 1, "x")
    assert not quiet.filter(held)
    reported = record(template, 31.0, 1, "refused")
    assert quiet.filter(reported)
    assert reported.getMessage().endswith("[and 1 more like it in the 10 s before]")


def test_other_lines_are_not_held_back():
    quiet = RepeatFilter(window_s=10)
    assert quiet.filter(record("Unable connect to node with id %s: %s", 0, 1, "x"))
    assert quiet.filter(record("Heartbeat failed for group %s", 0.1, "g"))

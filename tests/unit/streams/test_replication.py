"""Every topic carries the min.insync.replicas its replication factor calls for."""

import logging

import pytest

from streams.admin import warn_low_replication
from streams.settings import KafkaSettings
from streams.topics import min_insync_replicas, topic_specs


@pytest.mark.parametrize(("rf", "isr"), [(1, 1), (2, 1), (3, 2), (5, 2)])
def test_min_insync_replicas_lets_one_broker_fail(rf: int, isr: int):
    assert min_insync_replicas(rf) == isr


def test_every_topic_carries_its_min_insync_replicas():
    specs = topic_specs(KafkaSettings(replication=3))
    assert {(s.replication, s.config["min.insync.replicas"]) for s in specs} == {(3, "2")}


def test_a_cluster_that_could_replicate_more_is_warned_about(caplog):
    specs = topic_specs(KafkaSettings(replication=1))
    with caplog.at_level(logging.WARNING, logger="streams.admin"):
        warn_low_replication(specs, brokers=1)
        assert not caplog.records
        warn_low_replication(specs, brokers=3)
    assert "LINKCAST_REPLICATION=3" in caplog.text

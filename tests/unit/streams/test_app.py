"""The Faust app is built from settings alone."""

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.app import create_app
from streams.flowsreader import Commits, Held
from streams.settings import StreamSettings


def test_workers_of_two_topic_prefixes_keep_their_state_apart(tmp_path: Path):
    dirs = {
        prefix: Path(
            create_app(
                StreamSettings(
                    topic_prefix=prefix,
                    data_dir=tmp_path / "not-yet",
                    forecast=False,
                    classify=False,
                )
            ).conf.datadir
        )
        for prefix in ("one", "two")
    }
    assert dirs["one"] != dirs["two"]
    assert all(d.is_relative_to(tmp_path / "not-yet") for d in dirs.values())
    assert (tmp_path / "not-yet").is_dir()  # made, parents and all: Faust makes only the last


def test_flows_are_read_directly_unless_transactions_need_faust():
    assert StreamSettings().reads_flows_directly
    assert not StreamSettings(processing_guarantee="exactly_once").reads_flows_directly
    assert not StreamSettings(flows_reader="faust").reads_flows_directly
    with pytest.raises(ValidationError, match="outside Kafka transactions"):
        StreamSettings(flows_reader="direct", processing_guarantee="exactly_once")


def test_a_direct_worker_subscribes_its_agent_to_the_ticks_only(tmp_path: Path):
    def topics_of(reader: str) -> set[str]:
        settings = StreamSettings(
            topic_prefix="t", data_dir=tmp_path, store="memory://", flows_reader=reader
        )
        app = create_app(settings)
        return {t for agent in app.agents.values() for t in agent.channel.topics}

    assert topics_of("direct") == {"t.ticks"}
    assert topics_of("faust") == {"t.flows", "t.ticks"}


def test_commits_note_the_offset_after_each_acknowledged_record():
    commits = Commits()

    class Record:
        def __init__(self, partition: int, offset: int) -> None:
            self.partition, self.offset = partition, offset

    for partition, offset in [(0, 5), (0, 6), (3, 41)]:
        asyncio.run(commits.ack(Held(Record(partition, offset))))
    assert commits.take() == {0: 7, 3: 42}
    assert commits.take() == {}  # taken once


def test_checkpoints_come_every_5_s_with_the_direct_reader_only():
    assert StreamSettings().checkpoint_interval_s == 5.0
    assert StreamSettings(processing_guarantee="exactly_once").checkpoint_interval_s == 1.0
    assert StreamSettings(flows_reader="faust").checkpoint_interval_s == 1.0
    assert StreamSettings(checkpoint_s=2.5).checkpoint_interval_s == 2.5
    with pytest.raises(ValidationError):
        StreamSettings(checkpoint_s=0)
    assert StreamSettings(checkpoint_s=60).checkpoint_interval_s == 60
    with pytest.raises(ValidationError, match="30 or less"):
        StreamSettings(checkpoint_s=45, processing_guarantee="exactly_once")


def test_rocksdb_is_sized_for_writes_and_memory_has_no_options(tmp_path: Path):
    from streams.app import ROCKSDB_OPTIONS

    def table_of(store: str):
        settings = StreamSettings(topic_prefix="t", data_dir=tmp_path, store=store)
        (table,) = create_app(settings).tables.values()
        return table

    rocks = table_of("rocksdb://").data.rocksdb_options
    assert rocks.write_buffer_size == ROCKSDB_OPTIONS["write_buffer_size"] == 16 << 20
    assert rocks.max_write_buffer_number == 2
    assert rocks.block_cache_size == 4 << 20  # Faust's default: 2 GiB a partition
    assert rocks.bloom_filter_size == 10  # Faust's default: 3 bits a key
    assert table_of("memory://").options is None
    # Faust pops keys from the options it is given: the app hands it a copy
    assert ROCKSDB_OPTIONS == {
        "write_buffer_size": 16 << 20,
        "max_write_buffer_number": 2,
        "block_cache_size": 4 << 20,
        "bloom_filter_size": 10,
    }

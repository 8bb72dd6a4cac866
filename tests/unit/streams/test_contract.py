"""Topic names, layouts and the generated JSON Schemas."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.jsonschema import write_schemas
from streams.schemas import TOPIC_RECORDS
from streams.settings import KafkaSettings, StreamSettings
from streams.topics import Topics, topic_specs


def test_every_topic_name_derives_from_the_prefix():
    names = [s.name for s in topic_specs(KafkaSettings(topic_prefix="lab"))]
    assert names[:8] == [
        "lab.flows",
        "lab.windows",
        "lab.classifications",
        "lab.forecasts",
        "lab.alerts",
        "lab.link-state",
        "lab.deadletter",
        "lab.models",
    ]


def test_layouts_come_from_settings_and_link_state_is_compacted():
    specs = {s.name: s for s in topic_specs(KafkaSettings(partitions=6, replication=3))}
    topics = Topics("linkcast")
    assert specs[topics.flows].partitions == 6
    assert specs[topics.flows].replication == 3
    assert specs[topics.link_state].config["cleanup.policy"] == "compact"
    assert specs[topics.ticks].partitions == specs[topics.flows].partitions  # co-partitioned
    assert specs[topics.models].partitions == 1


def test_settings_read_prefixed_variables_and_reject_bad_values(monkeypatch):
    monkeypatch.setenv("LINKCAST_BIN_S", "0.5")
    monkeypatch.setenv("LINKCAST_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("BROKER_URL", "kafka://elsewhere:1")  # not ours: ignored
    settings = StreamSettings()
    assert (settings.bin_s, settings.kafka_bootstrap) == (0.5, "k1:9092,k2:9092")
    monkeypatch.setenv("LINKCAST_WINDOW_BINS", "1")
    with pytest.raises(ValidationError, match="window_bins"):
        StreamSettings()
    monkeypatch.setenv("LINKCAST_WINDOW_BINS", "10")
    monkeypatch.setenv("LINKCAST_TOPIC_PREFIX", "has space")
    with pytest.raises(ValidationError, match="topic_prefix"):
        StreamSettings()


def test_schema_files_are_written_for_every_topic(tmp_path):
    paths = write_schemas(tmp_path)
    assert sorted(p.name for p in paths) == sorted(f"{r}.schema.json" for r in TOPIC_RECORDS)
    flows = json.loads((tmp_path / "flows.schema.json").read_text())
    assert set(flows["required"]) == {"link", "ts", "bytes", "packets"}
    assert flows["additionalProperties"] is False


def test_published_schema_files_match_the_code(tmp_path):
    """streams/schema/ is what outside producers validate against: regenerate with `make schema`."""
    write_schemas(tmp_path)
    published = Path(__file__).resolve().parents[3] / "streams" / "schema"
    for fresh in tmp_path.iterdir():
        assert (published / fresh.name).read_text() == fresh.read_text(), (
            f"{fresh.name} is out of date; run `make schema`"
        )

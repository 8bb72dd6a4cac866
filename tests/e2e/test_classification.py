"""A running worker classifies every flow with the features training computes, exactly.

The worker runs with LINKCAST_CLASSIFY_EMIT_FEATURES=true, so each
classification carries the feature vector the worker fed the tree. Every one
must equal what ``models.features.flow_features`` computes offline for the
same simulated record, and the class and confidence must be those the same
model version gives offline.
"""

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from models.features import flow_features
from models.registry import Registry
from models.runtime import load_classifier
from producers.simulator import SimulationConfig, simulate
from streams.topics import Topics
from tests.helpers import (
    free_port,
    json_values,
    linkcast_process,
    read_topic,
    run_linkcast,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


def worker_env(bootstrap: str, prefix: str, tmp_path: Path) -> dict[str, str]:
    """A worker of its own, whose registry (empty at first) falls back to the packaged models."""
    return {
        "LINKCAST_KAFKA_BOOTSTRAP": bootstrap,
        "LINKCAST_TOPIC_PREFIX": prefix,
        "LINKCAST_PARTITIONS": "2",
        "LINKCAST_DATA_DIR": str(tmp_path / "worker-state"),
        "LINKCAST_WORKER_PORT": str(free_port()),
        "LINKCAST_MODELS_DIR": str(tmp_path / "registry"),
    }


def _key(
    link: str,
    ts: float,
    sport: int | None,
    dport: int | None,
    features: list[float],
    cls: str,
    confidence: float,
) -> tuple:
    return (link, ts, sport, dport, tuple(features), cls, confidence)


def test_worker_features_and_classes_equal_the_offline_ones(
    kafka_bootstrap, topic_prefix, tmp_path: Path
):
    env = worker_env(kafka_bootstrap, topic_prefix, tmp_path)
    env["LINKCAST_CLASSIFY_EMIT_FEATURES"] = "true"
    records = list(simulate(SimulationConfig(links=3, duration_s=15, rate=60, seed=5)))
    classifier = load_classifier(Registry(tmp_path / "registry").current("classifier"))
    offline = Counter(
        _key(r.link, r.ts, r.sport, r.dport, flow_features(r), cls, conf)
        for r, (cls, conf) in zip(records, classifier.classify(records), strict=True)
    )
    topic = Topics(topic_prefix).classifications
    assert run_linkcast(["topics", "create"], env).returncode == 0
    with linkcast_process(["worker"], env, tmp_path / "worker.log") as worker:
        result = run_linkcast(
            [
                "simulate",
                "--links",
                "3",
                "--duration",
                "15",
                "--rate",
                "60",
                "--seed",
                "5",
                "--max",
            ],
            env,
        )
        assert result.returncode == 0, result.stderr
        seen = wait_until(
            lambda: (
                (v := json_values(read_topic(kafka_bootstrap, topic)))
                and len(v) >= len(records)
                and v
            ),
            120,
            f"{len(records)} classifications",
        )
        assert worker.poll() is None
    online = Counter(
        _key(
            c["link"],
            c["ts"],
            c.get("sport"),
            c.get("dport"),
            c["features"],
            c["cls"],
            c["confidence"],
        )
        for c in seen
    )
    assert {c["model_version"] for c in seen} == {classifier.version}
    assert online == offline


def test_a_promoted_classifier_is_used_without_a_restart(
    kafka_bootstrap, topic_prefix, tmp_path: Path
):
    registry = Registry(tmp_path / "registry")
    packaged = registry.current("classifier")
    # A second version: the packaged artifacts recorded again under a new name.
    staging = tmp_path / "staging"
    shutil.copytree(packaged.path, staging)
    (staging / "meta.json").unlink()
    meta = {k: packaged.meta[k] for k in ("params", "summary", "data_fingerprint")}
    meta["artifact_files"] = {role: e["file"] for role, e in packaged.meta["artifacts"].items()}
    new = registry.add("classifier", staging, meta)
    assert new.name != packaged.name
    env = worker_env(kafka_bootstrap, topic_prefix, tmp_path)
    topic = Topics(topic_prefix).classifications
    first_start, second_start = 1_767_225_600, 1_767_225_700

    def versions_from(start: float) -> list[str]:
        values = json_values(read_topic(kafka_bootstrap, topic))
        return [c["model_version"] for c in values if start <= c["ts"] < start + 100]

    def simulate_at(start: int) -> int:
        result = run_linkcast(
            [
                "simulate",
                "--links",
                "2",
                "--duration",
                "5",
                "--rate",
                "40",
                "--start",
                str(start),
                "--max",
            ],
            env,
        )
        assert result.returncode == 0, result.stderr
        return int(re.search(r"published (\d+) records", result.stdout)[1])  # type: ignore[index]

    assert run_linkcast(["topics", "create"], env).returncode == 0
    log = tmp_path / "worker.log"
    with linkcast_process(["worker"], env, log) as worker:
        first = simulate_at(first_start)
        wait_until(
            lambda: len(versions_from(first_start)) >= first,
            120,
            "every classification of the first batch",
        )
        promoted = run_linkcast(["models", "promote", "classifier", new.name], env)
        assert promoted.returncode == 0, promoted.stderr
        assert f"announced classifier {new.name}" in promoted.stdout
        wait_until(
            lambda: f"now using classifier {new.name}" in log.read_text(),
            60,
            "the worker to load the announced version",
        )
        second = simulate_at(second_start)
        wait_until(
            lambda: len(versions_from(second_start)) >= second,
            120,
            "every classification of the second batch",
        )
        assert worker.poll() is None
    assert set(versions_from(first_start)) == {packaged.name}
    assert set(versions_from(second_start)) == {new.name}

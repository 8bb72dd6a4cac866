"""Session fixtures: a real Kafka broker for every test that asks for one.

Where the broker comes from, in order:
1. KAFKA_BOOTSTRAP_SERVERS, if set (a cluster you run yourself);
2. a testcontainers Kafka container, if a Docker engine answers;
3. the project's own launcher: a local KRaft broker named "test" on port 19092,
   stopped again at the end of the session if this session started it.

Locally, with none of them possible, Kafka tests are skipped with the reason.
Under CI=true that is a failure instead: CI must never pass without a broker.
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.exceptions import LauncherError
from deploy.localkafka import LocalCluster

REPO = Path(__file__).resolve().parent.parent
TEST_BROKER_PORT = 19092
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def skip_or_fail_in_ci(reason: str) -> None:
    """Skip locally; under CI=true a missing broker, tool or data set is a failure."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:  # no client library, no socket, no engine: all mean "no Docker"
        return False
    return True


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real Kafka broker for this test session."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        yield given
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:4.1.1").with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    cluster = LocalCluster(
        REPO / ".linkcast",
        base_port=TEST_BROKER_PORT,
        name="test",
        # Check retention every second instead of every five minutes, so that a
        # topic that deletes what it should keep fails its test at once.
        overrides={"log.retention.check.interval.ms": "1000"},
    )
    try:
        started = cluster.start(timeout_s=120)
    except LauncherError as exc:
        skip_or_fail_in_ci(f"no Kafka broker could be started: {exc}")
    yield cluster.bootstrap
    cluster.stop(started)


@pytest.fixture
def topic_prefix() -> str:
    """A fresh topic prefix (and so consumer group) for one test."""
    return f"t{uuid.uuid4().hex[:12]}"


SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real captures and datasets beside the repository (never copied into it)."""
    if not (SHARED_DATA / "pcap").is_dir():
        skip_or_fail_in_ci(f"the shared data folder {SHARED_DATA} is missing")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tshark() -> str:
    """Path of tshark, the independent reader the capture tests compare against."""
    import shutil

    path = shutil.which("tshark")
    if path is None:
        skip_or_fail_in_ci("tshark is not installed (make sysdeps installs it)")
    return path

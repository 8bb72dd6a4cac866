"""The local cluster's layout and its refusals, without starting a JVM."""

import socket
import subprocess
from pathlib import Path

import pytest

from deploy.exceptions import LauncherError
from deploy.localkafka import LocalCluster, check_java, kafka_version, outgoing_port_hint


def props(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


def test_one_node_listens_on_9092_and_replicates_once(tmp_path: Path):
    cluster = LocalCluster(tmp_path)
    (node,) = cluster.nodes
    conf = props(cluster.server_properties(node))
    assert cluster.bootstrap == "127.0.0.1:9092"
    assert conf["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9192"
    assert conf["controller.quorum.voters"] == "0@127.0.0.1:9192"
    assert conf["offsets.topic.replication.factor"] == "1"
    assert conf["auto.create.topics.enable"] == "false"


def test_three_nodes_get_distinct_ports_one_quorum_and_replication_three(tmp_path: Path):
    cluster = LocalCluster(tmp_path, brokers=3)
    assert cluster.bootstrap == "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094"
    confs = [props(cluster.server_properties(n)) for n in cluster.nodes]
    assert len({c["node.id"] for c in confs}) == 3
    assert len({c["log.dirs"] for c in confs}) == 3
    assert {c["controller.quorum.voters"] for c in confs} == {
        "0@127.0.0.1:9192,1@127.0.0.1:9193,2@127.0.0.1:9194"
    }
    assert confs[0]["min.insync.replicas"] == "2"
    assert confs[0]["default.replication.factor"] == "3"


def test_clusters_with_other_names_keep_their_own_state_but_share_the_jars(tmp_path: Path):
    dev, test = LocalCluster(tmp_path), LocalCluster(tmp_path, name="test", base_port=19092)
    assert dev.nodes[0].dir != test.nodes[0].dir
    assert dev.lib_dir == test.lib_dir
    assert dev.lib_dir.name == f"lib-{kafka_version()}"


def test_a_taken_port_is_refused_with_a_clear_message(tmp_path: Path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        cluster = LocalCluster(tmp_path, base_port=port)
        with pytest.raises(LauncherError, match=f"port 127.0.0.1:{port} is taken"):
            cluster.start(timeout_s=5)


def test_a_taken_port_in_the_outgoing_range_says_why_it_may_be_taken(tmp_path: Path):
    # a client retrying a port in that range can be given it as its own and connect to
    # itself (seen with 41092, while the three-broker test's cluster was down)
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text("32768\t60999\n")
    assert "below 32768" in outgoing_port_hint(41092, ranges)
    assert outgoing_port_hint(19092, ranges) == ""
    ranges.write_text("garbled")
    assert outgoing_port_hint(41092, ranges) == ""  # unknown: no guess
    assert outgoing_port_hint(41092, tmp_path / "absent") == ""


def test_missing_java_is_named(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LauncherError, match="Java 17 or newer"):
        check_java()


def test_missing_maven_is_named_when_the_jars_are_not_cached(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LauncherError, match="Maven"):
        LocalCluster(tmp_path).resolve_jars()


def test_stop_leaves_alone_a_process_that_is_not_its_broker(tmp_path: Path):
    cluster = LocalCluster(tmp_path)
    node = cluster.nodes[0]
    node.dir.mkdir(parents=True)
    bystander = subprocess.Popen(["sleep", "30"])  # a process of ours, not a broker
    try:
        node.pid_path.write_text(f"{bystander.pid}\n")
        assert cluster.pid_of(node) is None
        assert cluster.stop() == []
        assert bystander.poll() is None, "stop() must not touch a process it did not start"
    finally:
        bystander.kill()
        bystander.wait()

"""A real Apache Kafka cluster on this machine, for development, demos and tests.

`linkcast kafka start` resolves the official broker jars from Maven Central once
(with Maven, at the version pinned in ``deploy/kafka/pom.xml``), formats each
node's storage for KRaft, and starts one JVM per node in combined
broker+controller mode. Everything lives below ``<home>/kafka`` (default
``.linkcast/kafka``, git-ignored):

    lib-<version>/                  the jars, shared by every cluster, reused by every start
    <name>/cluster.id               the KRaft cluster id, made on its first start
    <name>/node-<id>/server.properties, broker.log, broker.pid, data/

``name`` tells clusters apart ("default" for `linkcast kafka`, "test" for the
test suite, on other ports), so tests never touch a developer's broker.

Node ``i`` listens for clients on ``base_port + i`` and for the controller quorum
on ``base_port + 100 + i``, so one node gives 127.0.0.1:9092 and three nodes give
9092, 9093 and 9094.
"""

import asyncio
import base64
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deploy.exceptions import LauncherError
from streams.admin import broker_count, wait_for_broker
from streams.exceptions import BrokerUnavailableError

POM = Path(__file__).parent / "kafka" / "pom.xml"
LOCAL_PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOG4J = Path(__file__).parent / "kafka" / "log4j2.properties"
CONTROLLER_PORT_OFFSET = 100
MIN_JAVA = 17


@dataclass(frozen=True)
class Node:
    """One KRaft node (broker and controller in one JVM)."""

    node_id: int
    host: str
    broker_port: int
    controller_port: int
    dir: Path

    @property
    def config_path(self) -> Path:
        return self.dir / "server.properties"

    @property
    def log_path(self) -> Path:
        return self.dir / "broker.log"

    @property
    def pid_path(self) -> Path:
        return self.dir / "broker.pid"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"


@dataclass(frozen=True)
class LocalCluster:
    """A local cluster of ``brokers`` KRaft nodes below ``home``."""

    home: Path
    brokers: int = 1
    host: str = "127.0.0.1"
    base_port: int = 9092
    name: str = "default"
    heap: str = ""
    # Extra broker properties, e.g. a short log.retention.check.interval.ms for tests.
    overrides: Mapping[str, str] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.home / "kafka" / self.name

    @property
    def nodes(self) -> list[Node]:
        return [
            Node(
                node_id=i,
                host=self.host,
                broker_port=self.base_port + i,
                controller_port=self.base_port + CONTROLLER_PORT_OFFSET + i,
                dir=self.root / f"node-{i}",
            )
            for i in range(self.brokers)
        ]

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{n.host}:{n.broker_port}" for n in self.nodes)

    @property
    def lib_dir(self) -> Path:
        return self.home / "kafka" / f"lib-{kafka_version()}"

    # ---- configuration -------------------------------------------------

    def server_properties(self, node: Node) -> str:
        """The broker configuration of ``node``; replication follows the cluster size."""
        voters = ",".join(f"{n.node_id}@{n.host}:{n.controller_port}" for n in self.nodes)
        rf = min(3, self.brokers)
        min_isr = min(2, self.brokers)
        lines = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{node.host}:{node.broker_port},"
            f"CONTROLLER://{node.host}:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{node.host}:{node.broker_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(node.data_dir.resolve()),
            # linkcast creates its topics itself, with the layout from its settings.
            "auto.create.topics.enable": "false",
            "num.partitions": "1",
            "default.replication.factor": str(rf),
            "min.insync.replicas": str(min_isr),
            "offsets.topic.replication.factor": str(rf),
            "transaction.state.log.replication.factor": str(rf),
            "transaction.state.log.min.isr": str(min_isr),
            "share.coordinator.state.topic.replication.factor": str(rf),
            "share.coordinator.state.topic.min.isr": str(min_isr),
            # A development cluster: start consumer groups at once, keep little data.
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.hours": "24",
            "log.segment.bytes": str(64 * 1024 * 1024),
        }
        lines.update(self.overrides)
        header = "# Written by 'linkcast kafka start'; rewritten on every start.\n"
        return header + "".join(f"{k}={v}\n" for k, v in lines.items())

    def java_command(self, node: Node, main_class: str, *args: str) -> list[str]:
        heap = self.heap or ("1g" if self.brokers == 1 else "512m")
        return [
            "java",
            f"-Xmx{heap}",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J}",
            f"-Dlinkcast.node={node.dir.resolve()}",  # lets `stop` recognise its own JVM
            "-cp",
            f"{self.lib_dir.resolve()}/*",
            main_class,
            *args,
        ]

    # ---- lifecycle -----------------------------------------------------

    def start(self, timeout_s: float = 90.0) -> list[int]:
        """Start every node that is not running; return the ids of the nodes started.

        Returns only when the cluster answers a metadata request naming all
        ``brokers`` nodes (the first to register answers before the others); raises
        LauncherError with the reason and the tail of the broker log otherwise,
        after stopping the nodes it had started.
        """
        check_java()
        to_start = [n for n in self.nodes if self.pid_of(n) is None]
        for node in to_start:
            for port in (node.broker_port, node.controller_port):
                if not port_is_free(node.host, port):
                    raise LauncherError(
                        f"port {node.host}:{port} is taken by another process; stop it, or run "
                        "'linkcast kafka status' to see whether a linkcast broker already runs"
                        + outgoing_port_hint(port)
                    )
        self.resolve_jars()
        cluster_id = self._cluster_id()
        started: dict[int, subprocess.Popen[bytes]] = {}
        try:
            for node in to_start:
                node.dir.mkdir(parents=True, exist_ok=True)
                node.config_path.write_text(self.server_properties(node))
                if not (node.data_dir / "meta.properties").exists():
                    self._format(node, cluster_id)
                started[node.node_id] = self._spawn(node)
            asyncio.run(
                wait_for_broker_or_exit(self.bootstrap, started, timeout_s, brokers=self.brokers)
            )
        except (BrokerUnavailableError, LauncherError) as exc:
            tails = "\n".join(
                f"--- {n.log_path} (last lines) ---\n{tail(n.log_path)}"
                for n in self.nodes
                if n.node_id in started
            )
            self.stop(list(started))
            raise LauncherError(f"{exc}\n{tails}") from exc
        except BaseException:  # Ctrl-C during start-up: leave nothing running behind
            self.stop(list(started))
            raise
        return list(started)

    def stop(self, node_ids: list[int] | None = None, timeout_s: float = 30.0) -> list[int]:
        """Stop the nodes this launcher started (all, or ``node_ids``); return those stopped.

        Every node gets SIGTERM at once: stopped one by one, the last nodes of a
        cluster would wait out ``timeout_s`` for a controller quorum that is gone.
        A node still running after ``timeout_s`` gets SIGKILL.
        """
        running: list[tuple[Node, int]] = []
        for node in self.nodes:
            if node_ids is not None and node.node_id not in node_ids:
                continue
            pid = self.pid_of(node)
            if pid is None:
                node.pid_path.unlink(missing_ok=True)
                continue
            with contextlib.suppress(ProcessLookupError):  # it may have exited meanwhile
                os.kill(pid, signal.SIGTERM)
            running.append((node, pid))
        deadline = time.monotonic() + timeout_s
        for node, pid in running:
            if not wait_for_exit(pid, max(0.0, deadline - time.monotonic())):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                wait_for_exit(pid, 5.0)
            node.pid_path.unlink(missing_ok=True)
        return [node.node_id for node, _pid in running]

    def kill(self, node_id: int) -> None:
        """SIGKILL one node, as a crash would (for fault tests)."""
        node = self.nodes[node_id]
        pid = self.pid_of(node)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_for_exit(pid, 10.0)

    def status(self) -> list[tuple[Node, int | None]]:
        """Each node with the pid of its running JVM, or None."""
        return [(n, self.pid_of(n)) for n in self.nodes]

    def pid_of(self, node: Node) -> int | None:
        """The pid of ``node``'s JVM if it runs and is the one this launcher started."""
        try:
            pid = int(node.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        if f"-Dlinkcast.node={node.dir.resolve()}" not in cmdline.split("\0"):
            return None  # the pid was reused by an unrelated process
        return pid

    # ---- steps ---------------------------------------------------------

    def resolve_jars(self) -> None:
        """Copy the broker jars from Maven Central into lib_dir unless already there."""
        marker = self.lib_dir / ".complete"
        if marker.exists():
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LauncherError(
                "Maven ('mvn') is needed once to fetch the Kafka broker jars from Maven "
                "Central; install it (Debian: apt-get install maven) or set "
                "LINKCAST_KAFKA_BOOTSTRAP to a running cluster"
            )
        self.lib_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={self.lib_dir.resolve()}",
            "-DincludeScope=runtime",
        ]
        print(f"fetching Apache Kafka {kafka_version()} jars with Maven (first start only)...")
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise LauncherError(
                f"Maven could not fetch the Kafka jars (exit {result.returncode}):\n"
                + "\n".join((result.stdout + result.stderr).splitlines()[-30:])
            )
        marker.write_text(kafka_version() + "\n")

    def _cluster_id(self) -> str:
        path = self.root / "cluster.id"
        if path.exists():
            return path.read_text().strip()
        self.root.mkdir(parents=True, exist_ok=True)
        # Kafka's cluster ids are 16 random bytes in URL-safe base64 without padding.
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        path.write_text(cluster_id + "\n")
        return cluster_id

    def _format(self, node: Node, cluster_id: str) -> None:
        cmd = self.java_command(
            # "--cluster-id=" keeps an id that starts with "-" (1 in 64) from reading as an option
            node,
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id}",
            "-c",
            str(node.config_path),
        )
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise LauncherError(
                f"formatting the storage of node {node.node_id} failed:\n"
                f"{result.stdout}{result.stderr}"
            )

    def _spawn(self, node: Node) -> "subprocess.Popen[bytes]":
        cmd = self.java_command(node, "kafka.Kafka", str(node.config_path))
        with node.log_path.open("ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in the terminal must not kill the broker
            )
        node.pid_path.write_text(f"{proc.pid}\n")
        return proc


async def wait_for_broker_or_exit(
    bootstrap: str,
    started: "dict[int, subprocess.Popen[bytes]]",
    timeout_s: float,
    brokers: int = 1,
) -> None:
    """Wait for a metadata answer with ``brokers`` brokers in it, failing fast if a
    JVM we just started exits."""
    probe = asyncio.create_task(wait_for_brokers(bootstrap, brokers, timeout_s))
    try:
        while not probe.done():
            for node_id, proc in started.items():
                if proc.poll() is not None:
                    raise LauncherError(
                        f"Kafka node {node_id} exited during start-up with code {proc.returncode}"
                    )
            await asyncio.wait({probe}, timeout=0.5)
        probe.result()
    finally:
        probe.cancel()


async def wait_for_brokers(bootstrap: str, brokers: int, timeout_s: float) -> None:
    """Wait until the cluster's metadata lists ``brokers`` brokers."""
    deadline = time.monotonic() + timeout_s
    while True:
        cluster = await wait_for_broker(bootstrap, max(0.5, deadline - time.monotonic()))
        have = broker_count(cluster)
        if have >= brokers:
            return
        if time.monotonic() > deadline:
            raise BrokerUnavailableError(
                bootstrap, timeout_s, f"only {have} of {brokers} brokers registered"
            )
        await asyncio.sleep(0.2)


def kafka_version() -> str:
    """The Kafka version pinned in the Maven POM."""
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text())
    if match is None:
        raise LauncherError(f"{POM} does not pin <kafka.version>")
    return match.group(1)


def check_java() -> None:
    """Raise LauncherError unless a Java >= 17 runtime is on PATH."""
    java = shutil.which("java")
    if java is None:
        raise LauncherError(
            f"Java {MIN_JAVA} or newer is needed for the local Kafka broker and none is on PATH; "
            "install it (Debian: apt-get install openjdk-17-jre-headless) or set "
            "LINKCAST_KAFKA_BOOTSTRAP to a running cluster"
        )
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        raise LauncherError(f"could not read the Java version from: {result.stderr.strip()}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise LauncherError(f"Kafka 4 needs Java {MIN_JAVA} or newer, found Java {major} at {java}")


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def outgoing_port_hint(port: int, range_file: Path = LOCAL_PORT_RANGE) -> str:
    """Why a stopped node's port may be taken, if it is one the kernel gives to outgoing
    connections: a client retrying that port while nothing listens can be given it as
    its own port and so connect to itself, holding it (seen with 41092)."""
    try:
        low, high = (int(x) for x in range_file.read_text().split())
    except (OSError, ValueError):
        return ""
    if not low <= port <= high:
        return ""
    return (
        f". Port {port} is in this machine's range for outgoing connections ({low}-{high}, "
        "net.ipv4.ip_local_port_range): a client still retrying it can hold it; "
        f"use ports below {low}"
    )


def wait_for_exit(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        _reap(pid)
        time.sleep(0.1)
    return False


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"

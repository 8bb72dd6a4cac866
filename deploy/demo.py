"""`linkcast demo`: the whole pipeline on this machine, stopped cleanly on Ctrl-C or SIGTERM."""

import asyncio
import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from api.auth import SCOPES, hash_secret
from api.settings import ApiSettings
from deploy.exceptions import LauncherError
from deploy.localkafka import LocalCluster, port_is_free, tail
from streams.admin import ensure_topics, wait_for_broker
from streams.exceptions import BrokerUnavailableError
from streams.settings import KafkaSettings, StreamSettings
from streams.topics import topic_specs

READY_TIMEOUT_S = 120.0
DEMO_CLIENT = "demo"


def _write_clients(path: Path, client_id: str, secret: str) -> Path:
    """The API's clients file for this run: one client with every scope, readable by us only."""
    document = {
        "clients": [{"id": client_id, "secret_hash": hash_secret(secret), "scopes": list(SCOPES)}]
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    path.chmod(0o600)
    return path


def _token(base: str, client_id: str, secret: str, scope: str) -> str:
    """A token from the API's token endpoint (client credentials)."""
    body = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": scope}).encode()
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    request = urllib.request.Request(
        f"{base}/v1/token", data=body, headers={"Authorization": f"Basic {basic}"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        token: str = json.loads(answer.read())["access_token"]
    return token


@dataclass
class _Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path


@dataclass
class Demo:
    """Starts what is missing, supervises it, and stops what it started."""

    home: Path
    links: int = 8
    rate: float = 200.0
    children: list[_Child] = field(default_factory=list)
    cluster: LocalCluster | None = None
    started_nodes: list[int] = field(default_factory=list)
    _stopping: bool = False

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            return self._run()
        except KeyboardInterrupt:
            print("\nstopping...")
            return 0
        finally:
            self._stop_all()

    def _run(self) -> int:
        kafka = KafkaSettings()
        api = ApiSettings()
        worker = StreamSettings()
        for what, host, port in (
            ("API", api.api_host, api.api_port),
            ("worker", worker.worker_host, worker.worker_port),
        ):
            if port and not port_is_free(host, port):
                raise LauncherError(
                    f"{host}:{port}, the {what}'s port, is taken; stop what listens there or "
                    f"set LINKCAST_{'API' if what == 'API' else 'WORKER'}_PORT"
                )
        self._ensure_broker(kafka)
        asyncio.run(
            ensure_topics(kafka.kafka_bootstrap, topic_specs(kafka), kafka.broker_timeout_s)
        )
        logs = self.home / "demo"
        logs.mkdir(parents=True, exist_ok=True)
        client_secret = secrets.token_urlsafe(24)
        clients = _write_clients(logs / "clients.json", DEMO_CLIENT, client_secret)
        self._spawn("worker", ["worker"], logs)
        self._spawn(
            "api",
            ["api"],
            logs,
            {
                "LINKCAST_API_MODE": "development",
                "LINKCAST_API_JWT_KEY": secrets.token_urlsafe(48),  # this run's own
                "LINKCAST_API_CLIENTS_FILE": str(clients),
            },
        )
        simulate = ["simulate", "--links", str(self.links), "--rate", str(self.rate)]
        self._spawn("simulator", [*simulate, "--duration", "604800", "--start", "now"], logs)
        base = f"http://{api.api_host}:{api.api_port}"
        token = self._wait_for_links(base, client_secret)
        print(
            f"\nlinkcast is running (development mode). Open the dashboard: {base}/  "
            f"(API: {base}/v1/links, docs: {base}/docs)\n"
            f"client credentials (scopes read predict admin): id {DEMO_CLIENT}, "
            f"secret {client_secret}\n"
            f"a read token, valid {api.api_token_ttl_s // 60} min:\n  {token}\n"
            f'try: curl -H "Authorization: Bearer $TOKEN" {base}/v1/links\n'
            f"new token: curl -u {DEMO_CLIENT}:{client_secret} "
            f"-d grant_type=client_credentials {base}/v1/token\n"
            f"logs: {logs}/*.log   stop: Ctrl-C\n",
            flush=True,
        )
        while True:
            for child in self.children:
                if child.proc.poll() is not None:
                    raise LauncherError(
                        f"the {child.name} exited with code {child.proc.returncode}; "
                        f"last lines of {child.log}:\n{tail(child.log)}"
                    )
            time.sleep(1.0)

    def _ensure_broker(self, kafka: KafkaSettings) -> None:
        if "LINKCAST_KAFKA_BOOTSTRAP" in os.environ:
            print(f"using the Kafka cluster at {kafka.kafka_bootstrap}")
            return
        try:
            asyncio.run(wait_for_broker(kafka.kafka_bootstrap, 2.0))
            print(f"a Kafka broker already answers at {kafka.kafka_bootstrap}; using it")
            return
        except BrokerUnavailableError:
            pass
        self.cluster = LocalCluster(self.home)
        print("starting the local Kafka broker...")
        self.started_nodes = self.cluster.start()

    def _spawn(
        self, name: str, args: list[str], logs: Path, env: dict[str, str] | None = None
    ) -> None:
        log = logs / f"{name}.log"
        # A stop signal between Popen and the append would orphan the child: hold it back.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            self._spawn_unblocked(name, args, log, env or {})
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def _spawn_unblocked(self, name: str, args: list[str], log: Path, env: dict[str, str]) -> None:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "deploy", *args],
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # we forward the stop ourselves, in order
            )
        self.children.append(_Child(name, proc, log))
        print(f"started the {name} (pid {proc.pid}), log {log}")

    def _wait_for_links(self, base: str, client_secret: str) -> str:
        """Wait until the API shows a link; return the read token it was asked with."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        token = ""
        last = "no answer yet"
        while time.monotonic() < deadline:
            for child in self.children:
                if child.proc.poll() is not None:
                    raise LauncherError(
                        f"the {child.name} exited during start-up; last lines of {child.log}:\n"
                        f"{tail(child.log)}"
                    )
            try:
                token = token or _token(base, DEMO_CLIENT, client_secret, "read")
                request = urllib.request.Request(
                    f"{base}/v1/links?limit=1", headers={"Authorization": f"Bearer {token}"}
                )
                with urllib.request.urlopen(request, timeout=2) as answer:
                    if b'"total":0' not in answer.read():
                        return token
                    last = "the API is ready but no link has closed a bin yet"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {exc.read().decode(errors='replace')[:200]}"
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(1.0)
        raise LauncherError(f"no link reached the API within {READY_TIMEOUT_S:.0f} s ({last})")

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    def _stop_all(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in reversed(self.children):
            if child.proc.poll() is None:
                child.proc.terminate()
        for child in reversed(self.children):
            try:
                child.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
            print(f"stopped the {child.name}")
        if self.cluster is not None and self.started_nodes:
            self.cluster.stop(self.started_nodes)
            print("stopped the local Kafka broker")

"""The image's health check: which role a container runs and where to ask it."""

import http.server
import threading
from collections.abc import Iterator

import pytest

from deploy import healthcheck


@pytest.mark.parametrize(
    ("cmdline", "role"),
    [
        (["/opt/linkcast/bin/python", "/opt/linkcast/bin/linkcast", "worker"], "worker"),
        (["/opt/linkcast/bin/python", "/opt/linkcast/bin/linkcast", "api"], "api"),
        (["/sbin/docker-init", "--", "linkcast", "api"], "api"),
        (["/opt/linkcast/bin/python", "/opt/linkcast/bin/linkcast", "api", "hash-secret"], None),
        (["/opt/linkcast/bin/python", "/opt/linkcast/bin/linkcast", "topics", "create"], None),
        (["/opt/linkcast/bin/python", "/opt/linkcast/bin/linkcast", "simulate"], None),
        (["/usr/bin/python3", "-m", "http.server"], None),
    ],
)
def test_the_role_comes_from_the_linkcast_command_line(cmdline, role):
    assert healthcheck.role_of(cmdline) == role


def test_the_probe_follows_the_settings(monkeypatch):
    monkeypatch.setenv("LINKCAST_WORKER_HOST", "0.0.0.0")
    monkeypatch.setenv("LINKCAST_WORKER_PORT", "7077")
    monkeypatch.setenv("LINKCAST_API_HOST", "10.1.2.3")
    monkeypatch.setenv("LINKCAST_API_PORT", "8123")
    assert healthcheck.probe_url("worker") == "http://127.0.0.1:7077/"
    assert healthcheck.probe_url("api") == "http://10.1.2.3:8123/health"


class _Status(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api_server(monkeypatch) -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("LINKCAST_API_HOST", "127.0.0.1")
    monkeypatch.setenv("LINKCAST_API_PORT", str(server.server_address[1]))
    monkeypatch.setattr(healthcheck, "main_cmdline", lambda: ["linkcast", "api"])
    yield server
    server.shutdown()
    server.server_close()


def test_main_says_healthy_only_when_the_api_answers(api_server, monkeypatch):
    assert healthcheck.main() == 0
    monkeypatch.setattr(_Status, "status", 503)
    assert healthcheck.main() == 1
    api_server.shutdown()
    api_server.server_close()
    assert healthcheck.main() == 1


def test_main_is_healthy_for_one_shot_commands(monkeypatch):
    monkeypatch.setattr(healthcheck, "main_cmdline", lambda: ["linkcast", "topics", "create"])
    assert healthcheck.main() == 0

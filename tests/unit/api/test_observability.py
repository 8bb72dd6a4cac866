"""/metrics, request ids and the JSON access log, through the real app."""

import json
import re

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.unit.api.conftest import SECRETS
from tests.unit.api.handfed import HandFedView, state, window


@pytest.fixture
def view() -> HandFedView:
    fed = HandFedView()
    fed.apply("link-state", b"a", state("a"))
    fed.apply("windows", b"a", window("a", 5.0))
    return fed


@pytest.fixture
def client(view, make_settings):
    with TestClient(create_app(make_settings(api_access_log_flush_s=0), view=view)) as test_client:
        answer = test_client.post(
            "/v1/token",
            data={"grant_type": "client_credentials"},
            auth=("reader", SECRETS["reader"]),
        )
        test_client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        yield test_client


def sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_count_requests_by_route_template_and_status_without_a_token(client):
    for path in ["/v1/links/a", "/v1/links/a", "/v1/links/zz", "/nowhere"]:
        client.get(path)
    text = client.get("/metrics", headers={"Authorization": ""}).text
    route = "/v1/links/{link:path}"
    assert sample(text, "linkcast_api_requests_total", route=route, status="200") == 2
    assert sample(text, "linkcast_api_requests_total", route=route, status="404") == 1
    assert sample(text, "linkcast_api_requests_total", route="<unmatched>", status="404") == 1
    assert sample(text, "linkcast_api_request_duration_seconds_count", route=route) == 3
    assert sample(text, "linkcast_api_view_ready") == 1
    assert sample(text, "linkcast_api_view_links") == 1
    assert sample(text, "linkcast_api_view_records_total", topic="windows") == 1
    assert sample(text, "linkcast_api_view_age_seconds") is not None
    assert sample(text, "linkcast_api_sse_clients") == 0
    assert sample(text, "linkcast_api_sse_dropped_events_total") == 0


def test_each_request_logs_one_json_line_with_its_request_id(client, capfd):
    capfd.readouterr()
    answer = client.get("/v1/links/a", headers={"X-Request-ID": "abc-123.x:y"})
    assert answer.headers["X-Request-ID"] == "abc-123.x:y"
    fresh = client.get("/v1/links/zz", headers={"X-Request-ID": "bad id\twith spaces"})
    generated = fresh.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{24}", generated)
    lines = [json.loads(x) for x in capfd.readouterr().err.splitlines() if x.startswith("{")]
    assert [(x["request_id"], x["status"]) for x in lines] == [
        ("abc-123.x:y", 200),
        (generated, 404),
    ]
    first = lines[0]
    assert first["route"] == "/v1/links/{link:path}"
    assert (first["method"], first["path"], first["client_id"]) == ("GET", "/v1/links/a", "reader")
    assert first["bytes"] == len(answer.content)
    assert first["duration_ms"] >= 0


def test_a_path_with_quotes_still_logs_valid_json(client, capfd):
    capfd.readouterr()
    client.get('/v1/links/a"b\\c')
    [line] = [x for x in capfd.readouterr().err.splitlines() if x.startswith("{")]
    assert json.loads(line)["path"] == '/v1/links/a"b\\c'


def test_the_access_log_can_be_turned_off(view, make_settings, capfd):
    with TestClient(create_app(make_settings(api_access_log=False), view=view)) as quiet:
        capfd.readouterr()
        quiet.get("/health")
        assert not [x for x in capfd.readouterr().err.splitlines() if x.startswith("{")]

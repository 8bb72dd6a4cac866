"""Every route and every status it answers with, checked against the app's own OpenAPI document.

For each case: the status is one the operation declares (or 404/405, which any
path may get), and the body validates against the schema declared for that
status. Together with test_auth.py (each way a token can be bad) and the
schemathesis run (generated requests), this is the API's contract.
"""

import re
import time
from collections.abc import Callable
from typing import Any

import jsonschema_rs
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.synthetic import fill
from tests.unit.api.conftest import SECRETS
from tests.unit.api.handfed import HandFedView

Request = Callable[[TestClient, dict[str, str]], Any]  # (client, tokens) -> response


def get(path: str, token: str | None = "reader", **params: Any) -> Request:
    def call(client: TestClient, tokens: dict[str, str]) -> Any:
        headers = {"Authorization": f"Bearer {tokens[token]}"} if token else {}
        if path == "/v1/stream":
            with client.stream("GET", path, headers=headers, params=params) as answer:
                if answer.status_code == 200:
                    answer.first_line = next(answer.iter_lines(), "")
                else:
                    answer.read()
                return answer
        return client.get(path, headers=headers, params=params)

    return call


def twice(request: Request) -> Request:
    def call(client: TestClient, tokens: dict[str, str]) -> Any:
        request(client, tokens)
        return request(client, tokens)

    return call


def token_request(**data: str) -> Request:
    def call(client: TestClient, tokens: dict[str, str]) -> Any:
        body = {"grant_type": "client_credentials", **data}
        return client.post("/v1/token", data=body, auth=("reader", SECRETS["reader"]))

    return call


def with_bad_secret(client: TestClient, tokens: dict[str, str]) -> Any:
    return client.post(
        "/v1/token", data={"grant_type": "client_credentials"}, auth=("reader", "wrong")
    )


SLOW = {"api_rate_burst": 1, "api_rate_per_s": 0.001}  # a second request within 1000 s: 429
GUARDED = {
    "/v1/links": {"limit": 0},
    "/v1/links/link-0000": None,
    "/v1/links/link-0000/history": {"n": 0},
    "/v1/alerts": {"recent": -1},
    "/v1/models": None,
    "/v1/stream": {"kind": "nonsense"},
}

# (case id, request, expected status, app setting overrides, view not ready, stream full)
CASES: list[tuple[str, Request, int, dict[str, Any], bool, bool]] = [
    ("health", get("/health", None), 200, {}, False, False),
    ("ready", get("/ready", None), 200, {}, False, False),
    ("ready not", get("/ready", None), 503, {}, True, False),
    ("metrics", get("/metrics", None), 200, {}, False, False),
    ("dashboard", get("/", None), 200, {}, False, False),
    ("no such path", get("/v2/nothing"), 404, {}, False, False),
    ("no such method", lambda c, t: c.delete("/v1/links"), 405, {}, False, False),
    ("token", token_request(), 200, {}, False, False),
    ("token bad grant", token_request(grant_type="password"), 400, {}, False, False),
    ("token bad scope", token_request(scope="admin"), 400, {}, False, False),
    ("token bad secret", with_bad_secret, 401, {}, False, False),
    (
        "token too big",
        token_request(scope="x" * 3000),
        413,
        {"api_body_max_bytes": 2048},
        False,
        False,
    ),
    ("token too long", token_request(scope="x" * 300), 422, {}, False, False),
    ("token too fast", twice(token_request()), 429, SLOW, False, False),
    ("stream too many", get("/v1/stream"), 503, {}, False, True),
]
for path, bad_params in GUARDED.items():
    CASES += [
        (f"{path} 200", get(path), 200, {}, False, False),
        (f"{path} 401", get(path, None), 401, {}, False, False),
        (f"{path} 403", get(path, "predictor"), 403, {}, False, False),
        (f"{path} 429", twice(get(path)), 429, SLOW, False, False),
        (f"{path} 503", get(path), 503, {}, True, False),
    ]
    if bad_params:
        CASES.append((f"{path} 422", get(path, **bad_params), 422, {}, False, False))
    if "link-0000" in path:
        CASES.append((f"{path} 404", get(path.replace("link-0000", "nope")), 404, {}, False, False))


def operation(app: FastAPI, method: str, path: str) -> tuple[str, dict[str, Any] | None]:
    """The OpenAPI template and operation that ``path`` reaches, if any."""
    for template, item in app.openapi()["paths"].items():
        pattern = template.replace("{link}", "[^?]+")
        if re.fullmatch(pattern, path) and method.lower() in item:
            return template, item[method.lower()]
    return path, None


@pytest.mark.parametrize(
    ("request_", "status", "overrides", "not_ready", "stream_full"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_every_route_and_status_matches_the_openapi_document(
    make_settings, request_, status, overrides, not_ready, stream_full
):
    view = HandFedView()
    fill(view.state, links=3, windows=5, now_s=time.time(), alert_every=2)
    settings = make_settings(sse_heartbeat_s=0.05, **overrides)
    app = create_app(settings, view=view)
    issuer = app.state.ctx.security.issuer
    tokens = {
        "reader": issuer.issue("reader", ["read"]),
        "predictor": issuer.issue("p", ["predict"]),
    }
    with TestClient(app) as client:
        view.is_ready = not not_ready
        while stream_full and len(view.hub.clients) < view.hub.max_clients:
            view.hub.subscribe(None, ["window"])
        answer = request_(client, tokens)
    assert answer.status_code == status, getattr(answer, "text", "")
    method, path = answer.request.method, answer.request.url.path
    template, declared = operation(app, method, path)
    if status in (404, 405) and declared is None:
        return  # a path or method no route has: Starlette's plain answer
    assert declared is not None, f"{method} {path} is not in the OpenAPI document"
    assert str(status) in declared["responses"], f"{template} does not declare {status}"
    content = declared["responses"][str(status)].get("content", {})
    media = answer.headers["content-type"].split(";")[0]
    if media == "text/event-stream":
        assert answer.first_line.startswith("retry:")
        return
    assert media in content, f"{template} {status}: {media} is not declared"
    schema = content[media].get("schema")
    if schema and media == "application/json":
        document = {"components": app.openapi()["components"], **schema}
        jsonschema_rs.validate(document, answer.json())

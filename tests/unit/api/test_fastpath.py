"""The plain-ASGI answer of GET /v1/links/{link} is the FastAPI route's answer, byte for byte."""

import json

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.fastpath import LinkFastPath
from api.synthetic import fill
from tests.unit.api.conftest import SECRETS
from tests.unit.api.handfed import HandFedView


@pytest.fixture
def app(make_settings):
    view = HandFedView()
    fill(view.state, links=3, windows=5, now_s=1_767_225_600.0, alert_every=2)
    return create_app(make_settings(), view=view)


def test_the_fast_path_and_the_fastapi_route_answer_the_same(app, monkeypatch):
    with TestClient(app) as client:
        token = client.post(
            "/v1/token",
            data={"grant_type": "client_credentials"},
            auth=("reader", SECRETS["reader"]),
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        fast = client.get("/v1/links/link-0000", headers=headers)
        # the fast path declines every request: the FastAPI route answers
        monkeypatch.setattr(LinkFastPath, "_answer", lambda self, scope, link: None)
        slow = client.get("/v1/links/link-0000", headers=headers)
    assert fast.status_code == slow.status_code == 200
    assert fast.headers["content-type"] == slow.headers["content-type"]
    mine, theirs = fast.json(), slow.json()
    assert abs(mine.pop("age_s") - theirs.pop("age_s")) < 5
    assert mine == theirs
    assert mine["alerts"]  # a full answer
    assert mine["forecast"]
    assert mine["window"]
    assert json.loads(fast.content) == fast.json()


def test_with_cors_on_a_cross_origin_request_gets_its_cors_headers(make_settings):
    view = HandFedView()
    fill(view.state, links=1, windows=2, now_s=1_767_225_600.0)
    app = create_app(make_settings(api_cors_origins=["https://example.org"]), view=view)
    with TestClient(app) as client:
        token = app.state.ctx.security.issuer.issue("reader", ["read"])
        answer = client.get(
            "/v1/links/link-0000",
            headers={"Authorization": f"Bearer {token}", "Origin": "https://example.org"},
        )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "https://example.org"
    assert answer.headers["access-control-expose-headers"]

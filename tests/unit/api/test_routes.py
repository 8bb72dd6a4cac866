"""The API's routes over a view fed by hand (the Kafka side is covered by the integration tests)."""

import asyncio
import json
import time

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.follower import Feed, Follower, Readiness
from tests.unit.api.conftest import SECRETS
from tests.unit.api.handfed import HandFedView, alert, forecast, state, window


@pytest.fixture
def view() -> HandFedView:
    return HandFedView(capacities={"a": 1000.0, "b": 2000.0})


def reader_token(app_client: TestClient) -> str:
    answer = app_client.post(
        "/v1/token",
        data={"grant_type": "client_credentials"},
        auth=("reader", SECRETS["reader"]),
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


@pytest.fixture
def client(view: HandFedView, make_settings):
    with TestClient(create_app(make_settings(), view=view)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {reader_token(test_client)}"
        yield test_client


def test_health_is_always_ok(client, view):
    view.is_ready = False
    assert client.get("/health").json() == {"status": "ok"}


def test_ready_says_why_not_and_the_view_routes_answer_503(client, view):
    view.is_ready = False
    answer = client.get("/ready")
    assert answer.status_code == 503
    assert answer.json()["reason"] == "the view is still reading"
    for path in ["/v1/links", "/v1/links/a", "/v1/links/a/history", "/v1/alerts", "/v1/models"]:
        refused = client.get(path)
        assert refused.status_code == 503, path
        assert refused.json()["detail"] == "the view is still reading"
        assert refused.headers["Retry-After"] == "5"


def test_links_are_listed_sorted_and_paged(client, view):
    for name in ["c", "a", "b"]:
        view.apply("link-state", name.encode(), state(name))
    page = client.get("/v1/links", params={"offset": 1, "limit": 1}).json()
    assert page["total"] == 3
    assert [link["link"] for link in page["links"]] == ["b"]
    assert page["links"][0]["age_s"] >= 2
    assert 0 <= page["age_s"] < 5


def test_one_link_has_its_window_forecast_error_and_active_alerts(client, view):
    view.apply("link-state", b"a", state("a", total_bytes=77))
    view.apply("windows", b"a", window("a", 100.0, bps=900.0, window_bps=500.0))
    view.apply("forecasts", b"a", forecast("a", made_at_s=100.0, bps=1000.0))
    view.apply("windows", b"a", window("a", 101.0, bps=1200.0))  # +1 s: scored, inside
    view.apply("alerts", b"a", alert("a", "x1"))
    view.apply("alerts", b"a", alert("a", "x2"))
    view.apply("alerts", b"a", alert("a", "x1", raised=False))
    answer = client.get("/v1/links/a").json()
    assert answer["state"]["total_bytes"] == 77
    assert answer["window"]["bin_end_s"] == 101.0
    assert answer["utilisation"] == pytest.approx(1200.0 / 1000)
    assert answer["capacity_bps"] == 1000
    assert answer["forecast"]["horizons"][0] == {
        "horizon_s": 1.0,
        "bps": 1000.0,
        "lower_bps": 500.0,
        "upper_bps": 2000.0,
    }
    [error] = answer["forecast_error"]
    assert (error["horizon_s"], error["scored"], error["mae_bps"]) == (1.0, 1, 200.0)
    assert error["coverage"] == 1.0
    assert [a["id"] for a in answer["alerts"]] == ["x2"]
    assert answer["class_mix"] is None  # the newest bin had no class mix
    assert 0 <= answer["age_s"] < 5


def test_an_unknown_link_is_404(client, view):
    for path in ["/v1/links/zz", "/v1/links/zz/history"]:
        missing = client.get(path)
        assert missing.status_code == 404
        assert "zz" in missing.json()["detail"]


def test_history_is_the_newest_n_windows_oldest_first_and_bounded(client, view):
    for end in range(1, 80):
        view.apply("windows", b"a", window("a", float(end)))
    view.apply("windows", b"a", window("a", 50.0))  # redelivered after a restart: not again
    answer = client.get("/v1/links/a/history", params={"n": 5}).json()
    assert [w["bin_end_s"] for w in answer["windows"]] == [75.0, 76.0, 77.0, 78.0, 79.0]
    assert answer["n"] == 5
    every = client.get("/v1/links/a/history", params={"n": 60}).json()
    assert every["n"] == 60  # the view keeps 60 (view_history_windows)
    assert client.get("/v1/links/a/history", params={"n": 61}).status_code == 422
    assert client.get("/v1/links/a/history", params={"n": 0}).status_code == 422


def test_links_filter_by_alerting_and_utilisation(client, view):
    view.apply("windows", b"a", window("a", 1.0, window_bps=900.0))  # 90 % of 1000
    view.apply("windows", b"b", window("b", 1.0, window_bps=200.0))  # 10 % of 2000
    view.apply("windows", b"c", window("c", 1.0, window_bps=5.0))  # no capacity known
    view.apply("alerts", b"b", alert("b", "b1"))

    def names(**params: object) -> list[str]:
        page = client.get("/v1/links", params=params).json()
        assert page["total"] == len(page["links"])
        return [link["link"] for link in page["links"]]

    assert names() == ["a", "b", "c"]
    assert names(alerting="true") == ["b"]
    assert names(alerting="false") == ["a", "c"]
    assert names(min_utilisation=0.5) == ["a"]
    assert names(max_utilisation=0.5) == ["b"]
    assert names(min_utilisation=0.05, max_utilisation=0.95) == ["a", "b"]
    assert names(min_utilisation=0.5, alerting="true") == []
    assert names(**{"class": "web"}) == []  # no link's newest bin has a class mix
    view.apply("windows", b"a", window("a", 2.0, class_mix={"web": (10, 1), "bulk": (90, 1)}))
    view.apply("windows", b"c", window("c", 2.0, class_mix={"web": (60, 1), "dns": (40, 2)}))
    assert names(**{"class": "web"}) == ["c"]
    assert names(**{"class": "bulk"}) == ["a"]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 10**9},
        {"offset": -1},
        {"limit": "x"},
        {"class": "teapot"},
        {"alerting": "maybe"},
        {"min_utilisation": -1},
        {"min_utilisation": "nan"},
        {"min_utilisation": 0.9, "max_utilisation": 0.1},
    ],
)
def test_bad_queries_are_refused_with_422(client, params):
    answer = client.get("/v1/links", params=params)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["msg"]


def test_a_tombstone_removes_a_link_and_garbage_is_skipped(client, view):
    view.apply("link-state", b"a", state("a"))
    view.apply("alerts", b"a", alert("a", "a1"))
    view.apply("link-state", b"a", None)
    view.apply("link-state", b"b", b"{not a state")
    assert client.get("/v1/links").json()["total"] == 0
    assert client.get("/v1/alerts").json()["active"] == []
    assert view.state.invalid["link-state"] == 1


def test_alerts_are_active_until_cleared_and_recent_is_bounded_newest_first(client, view):
    view.apply("alerts", b"a", alert("a", "a1", severity="critical"))
    view.apply("alerts", b"b", alert("b", "b1"))
    view.apply("alerts", b"a", alert("a", "a1", raised=False, severity="critical"))
    critical = client.get("/v1/alerts", params={"severity": "critical"}).json()
    assert critical["active"] == []
    assert [a["state"] for a in critical["recent"]] == ["cleared", "raised"]
    for i in range(6):
        view.apply("alerts", b"c", alert("c", f"c{i}", severity="info"))
    answer = client.get("/v1/alerts", params={"recent": 5}).json()
    assert [a["id"] for a in answer["active"]] == ["b1", "c0", "c1", "c2", "c3", "c4", "c5"]
    assert [a["id"] for a in answer["recent"]] == ["c5", "c4", "c3", "c2", "c1"]  # 5 are kept
    only_b = client.get("/v1/alerts", params={"link": "b"}).json()
    assert [a["id"] for a in only_b["active"]] == ["b1"]
    assert 0 <= answer["age_s"] < 5


def test_models_are_the_latest_announcement_of_each_kind(client, view):
    assert client.get("/v1/models").json() == {"age_s": None, "models": []}
    for version in ["20260101T000000Z-00000001", "20260102T000000Z-00000002"]:
        body = {"kind": "forecaster", "version": version, "path": "m", "metrics": {"mae": 1.5}}
        view.apply("models", b"forecaster", json.dumps(body).encode())
    answer = client.get("/v1/models").json()
    assert [(m["kind"], m["version"], m["metrics"]) for m in answer["models"]] == [
        ("forecaster", "20260102T000000Z-00000002", {"mae": 1.5})
    ]


def test_a_link_id_with_slashes_is_reachable(client, view):
    view.apply("link-state", b"core/ge-0/0/1", state("core/ge-0/0/1", total_bytes=5))
    view.apply("windows", b"core/ge-0/0/1", window("core/ge-0/0/1", 3.0))
    assert client.get("/v1/links/core/ge-0/0/1").json()["state"]["total_bytes"] == 5
    history = client.get("/v1/links/core/ge-0/0/1/history").json()
    assert (history["link"], history["n"]) == ("core/ge-0/0/1", 1)


def test_the_default_page_respects_the_configured_maximum(view, make_settings):
    for i in range(5):
        view.apply("link-state", f"l{i}".encode(), state(f"l{i}"))
    with TestClient(create_app(make_settings(api_page_max=3), view=view)) as small:
        small.headers["Authorization"] = f"Bearer {reader_token(small)}"
        assert small.get("/v1/links").json()["limit"] == 3
        assert len(small.get("/v1/links").json()["links"]) == 3


def test_the_cached_answer_changes_when_the_link_does(client, view):
    view.apply("link-state", b"a", state("a", total_bytes=1))
    assert client.get("/v1/links/a").json()["state"]["total_bytes"] == 1
    view.apply("link-state", b"a", state("a", total_bytes=2))
    assert client.get("/v1/links/a").json()["state"]["total_bytes"] == 2


def test_readiness_turns_false_when_the_follower_task_dies():
    """The real follower's readiness (not the hand-fed one): a dead reader task is reported."""

    async def crash() -> None:
        raise RuntimeError("consumer closed")

    async def scenario() -> tuple[Readiness, Readiness]:
        real = Follower(
            "unused:9092",
            [Feed("link-state", "lab.link-state", from_beginning=True)],
            lambda *_: None,
            lookback_s=60,
        )
        real._consumer = object()  # type: ignore[assignment]  # started, as readiness sees it
        real._broker_ok_at = time.monotonic()
        real._caught_up = True
        before = real.readiness()
        real._tasks = [asyncio.ensure_future(crash())]
        await asyncio.sleep(0.01)
        return before, real.readiness()

    before, after = asyncio.run(scenario())
    assert before.ready
    assert not after.ready
    assert "consumer closed" in after.reason

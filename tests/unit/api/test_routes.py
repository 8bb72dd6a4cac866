"""The API's routes over a view filled by hand (the Kafka side is covered by the e2e tests)."""

import asyncio
import time

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.view import LinkStateView, Readiness
from streams.schemas import LinkState
from tests.unit.api.conftest import SECRETS


class HandFedView(LinkStateView):
    """The real view's state and routes, without its Kafka consumer."""

    def __init__(self) -> None:
        super().__init__("unused:9092", "unused")
        self.is_ready = True

    async def start(self, timeout_s: float) -> None:
        return None

    async def stop(self) -> None:
        return None

    def readiness(self) -> Readiness:
        return (
            Readiness(True, "ok")
            if self.is_ready
            else Readiness(False, "the view is still reading")
        )


def state(link: str, total_bytes: int = 10) -> bytes:
    now = time.time()
    return (
        LinkState(
            link=link,
            event_time_s=100.0,
            watermark_s=98.0,
            bins_closed=3,
            total_bytes=total_bytes,
            total_packets=1,
            total_flows=1,
            late_records=0,
            updated_at_s=now - 2,
        )
        .model_dump_json()
        .encode()
    )


@pytest.fixture
def view() -> HandFedView:
    return HandFedView()


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


def test_ready_says_why_not(client, view):
    view.is_ready = False
    answer = client.get("/ready")
    assert answer.status_code == 503
    assert answer.json()["reason"] == "the view is still reading"
    assert client.get("/v1/links").status_code == 503


def test_links_are_listed_sorted_and_paged(client, view):
    for name in ["c", "a", "b"]:
        view.apply(name.encode(), state(name))
    page = client.get("/v1/links", params={"offset": 1, "limit": 1}).json()
    assert page["total"] == 3
    assert [link["link"] for link in page["links"]] == ["b"]
    assert page["links"][0]["age_s"] >= 2


def test_one_link_and_an_unknown_one(client, view):
    view.apply(b"a", state("a", total_bytes=77))
    assert client.get("/v1/links/a").json()["state"]["total_bytes"] == 77
    missing = client.get("/v1/links/zz")
    assert missing.status_code == 404
    assert "zz" in missing.json()["detail"]


def test_a_tombstone_removes_a_link_and_garbage_is_skipped(client, view):
    view.apply(b"a", state("a"))
    view.apply(b"a", None)
    view.apply(b"b", b"{not a state")
    assert client.get("/v1/links").json()["total"] == 0
    assert view.invalid_records == 1


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 10**9}, {"offset": -1}, {"limit": "x"}])
def test_bad_paging_is_refused(client, params):
    assert client.get("/v1/links", params=params).status_code == 422


def test_a_link_id_with_slashes_is_reachable(client, view):
    view.apply(b"core/ge-0/0/1", state("core/ge-0/0/1", total_bytes=5))
    assert client.get("/v1/links/core/ge-0/0/1").json()["state"]["total_bytes"] == 5


def test_the_default_page_respects_the_configured_maximum(view, make_settings):
    for i in range(5):
        view.apply(f"l{i}".encode(), state(f"l{i}"))
    with TestClient(create_app(make_settings(api_page_max=3), view=view)) as small:
        small.headers["Authorization"] = f"Bearer {reader_token(small)}"
        assert small.get("/v1/links").json()["limit"] == 3
        assert len(small.get("/v1/links").json()["links"]) == 3


def test_readiness_turns_false_when_the_follower_task_dies():
    """The real readiness logic (not the hand-fed one): a dead reader task is reported."""

    async def crash() -> None:
        raise RuntimeError("consumer closed")

    async def scenario() -> tuple[Readiness, Readiness]:
        real = LinkStateView("unused:9092", "lab.link-state")
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

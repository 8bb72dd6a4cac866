"""The API's routes over a view filled by hand (the Kafka side is covered by the e2e tests)."""

import time

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from api.view import LinkStateView, Readiness
from streams.schemas import LinkState


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


@pytest.fixture
def client(view: HandFedView):
    with TestClient(create_app(ApiSettings(), view=view)) as test_client:
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

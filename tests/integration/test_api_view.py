"""A real API process builds its view from a real broker and follows every output topic.

These tests publish the records themselves, as the worker and the model
registry do, so that each answer of the API is known in advance.
"""

import asyncio
import time
from functools import partial

import pytest
from aiokafka import AIOKafkaProducer

from streams.schemas import (
    Alert,
    Forecast,
    HorizonForecast,
    LinkState,
    ModelAnnouncement,
    WindowRecord,
)
from streams.topics import Topics
from tests.api_helpers import api_env, base_url, get_json, publish, token
from tests.e2e.test_pipeline import linkcast
from tests.helpers import linkcast_process, wait_until
from tests.unit.api.handfed import window

pytestmark = [pytest.mark.kafka]

VERSION = "20260101T000000Z-0000f007"  # shaped like a registry version name


def window_record(link: str, end_s: float, bps: float = 800.0) -> WindowRecord:
    return WindowRecord.model_validate_json(window(link, end_s, bps))


def forecast_record(link: str, made_at_s: float) -> Forecast:
    return Forecast(
        link=link,
        made_at_s=made_at_s,
        horizons=[HorizonForecast(horizon_s=1.0, bps=900.0, lower_bps=700.0, upper_bps=1100.0)],
        model_version=VERSION,
    )


def alert_record(link: str, alert_id: str, state: str) -> Alert:
    return Alert(
        id=alert_id,
        link=link,
        state=state,  # type: ignore[arg-type]  # "raised" or "cleared"
        severity="critical",
        reason="attack share 80% > 50%",
        evidence={"attack_share": 0.8},
        ts=1000.0,
    )


def link_state(link: str) -> LinkState:
    return LinkState(
        link=link,
        event_time_s=1000.0,
        watermark_s=998.0,
        bins_closed=1,
        total_bytes=100,
        total_packets=1,
        total_flows=1,
        late_records=0,
        updated_at_s=time.time(),
    )


def test_the_view_reads_back_then_follows_windows_forecasts_alerts_and_models(
    kafka_bootstrap, topic_prefix, tmp_path
):
    env = api_env(kafka_bootstrap, topic_prefix, tmp_path, LINKCAST_VIEW_LOOKBACK_S="60")
    topics = Topics(topic_prefix)
    base = base_url(env)
    linkcast(["topics", "create"], env)
    long_ago_ms = int((time.time() - 600) * 1000)
    model = ModelAnnouncement(
        kind="forecaster", version=VERSION, path="models/f", metrics={"mae_bps": 12.5}
    )
    publish(
        kafka_bootstrap,
        [
            # older than the lookback: not read back at start
            (topics.windows, window_record("old", 10.0), "old", long_ago_ms),
            (topics.link_state, link_state("l1"), "l1", None),
            (topics.windows, window_record("l1", 1000.0, bps=1000.0), "l1", None),
            (topics.forecasts, forecast_record("l1", 1000.0), "l1", None),
            (topics.alerts, alert_record("l1", "a1", "raised"), "l1", None),
            (topics.models, model, "forecaster", None),
        ],
    )
    with linkcast_process(["api"], env, tmp_path / "api.log") as api:
        bearer = wait_until(lambda: token(base), 60, "the API to give a token")
        first = wait_until(
            lambda: get_json(base, "/v1/links/l1", bearer), 60, "the view to have caught up"
        )
        assert first["state"]["total_bytes"] == 100
        assert first["window"]["bin_end_s"] == 1000.0
        assert first["forecast"]["model_version"] == VERSION
        assert [a["id"] for a in first["alerts"]] == ["a1"]
        assert get_json(base, "/v1/links", bearer)["total"] == 1  # "old" was not read back
        assert get_json(base, "/v1/models", bearer)["models"][0]["metrics"] == {"mae_bps": 12.5}

        publish(
            kafka_bootstrap,
            [
                (topics.windows, window_record("l1", 1001.0, bps=1000.0), "l1", None),
                (topics.alerts, alert_record("l1", "a1", "cleared"), "l1", None),
                (topics.forecasts, forecast_record("l2", 5.0), "l2", None),
            ],
        )
        # Topics are read independently: the tombstone goes once l1's last window is in,
        # as it would after the worker published that window and then forgot the link.
        wait_until(
            lambda: (
                (got := get_json(base, "/v1/links/l1", bearer))
                and got["window"]["bin_end_s"] == 1001.0
            ),
            30,
            "the view to have l1's last window",
        )
        publish(kafka_bootstrap, [(topics.link_state, None, "l1", None)])  # the worker forgot l1

        def followed() -> dict | None:
            alerts = get_json(base, "/v1/alerts", bearer)
            l2 = get_json(base, "/v1/links/l2", bearer)
            page = get_json(base, "/v1/links", bearer)
            if not (alerts and l2 and page):
                return None
            done = not alerts["active"] and [x["link"] for x in page["links"]] == ["l2"]
            return {"alerts": alerts, "l2": l2} if done else None

        seen = wait_until(followed, 30, "the view to follow the new records")
        assert [a["state"] for a in seen["alerts"]["recent"]] == ["cleared", "raised"]
        assert seen["l2"]["forecast"]["made_at_s"] == 5.0
        assert seen["l2"]["state"] is None
        assert api.poll() is None


def test_an_api_killed_and_started_again_rebuilds_the_same_view(
    kafka_bootstrap, topic_prefix, tmp_path
):
    """kill -9 the API, start it again: every route answers as it did (issue 8)."""
    env = api_env(kafka_bootstrap, topic_prefix, tmp_path, LINKCAST_VIEW_LOOKBACK_S="600")
    topics = Topics(topic_prefix)
    base = base_url(env)
    linkcast(["topics", "create"], env)
    links = [f"link-{i}" for i in range(5)]
    records: list = []
    for i, link in enumerate(links):
        records.append((topics.link_state, link_state(link), link, None))
        records += [
            (topics.windows, window_record(link, 1000.0 + s, bps=800.0 + 100 * i + s), link, None)
            for s in range(20)
        ]
        records.append((topics.forecasts, forecast_record(link, 1020.0), link, None))
    records += [
        (topics.alerts, alert_record("link-0", "a0", "raised"), "link-0", None),
        (topics.alerts, alert_record("link-1", "a1", "raised"), "link-1", None),
        (topics.alerts, alert_record("link-1", "a1", "cleared"), "link-1", None),
        (
            topics.models,
            ModelAnnouncement(kind="forecaster", version=VERSION, path="models/f", metrics={}),
            "forecaster",
            None,
        ),
    ]
    publish(kafka_bootstrap, records)
    routes = [
        "/v1/links?limit=100",
        "/v1/alerts",
        "/v1/models",
        *(f"/v1/links/{link}" for link in links),
        *(f"/v1/links/{link}/history" for link in links),
    ]

    def answers(bearer: str) -> dict | None:
        """Every route's answer once the view holds all that was published."""
        got = last[0] = {route: get_json(base, route, bearer) for route in routes}
        if any(v is None for v in got.values()):
            return None
        if got["/v1/links?limit=100"]["total"] != len(links) or not got["/v1/models"]["models"]:
            return None
        if any(got[f"/v1/links/{link}"]["window"]["bin_end_s"] != 1019.0 for link in links):
            return None
        if len(got["/v1/alerts"]["recent"]) != 3:
            return None
        return got

    last: list[dict] = [{}]
    runs = []
    for run in ("first", "after kill -9"):
        with linkcast_process(["api"], env, tmp_path / f"api-{len(runs)}.log") as api:
            bearer = wait_until(lambda: token(base), 60, f"the {run} API to give a token")
            try:
                runs.append(wait_until(partial(answers, bearer), 60, f"the {run} API's view"))
            except AssertionError as exc:
                raise AssertionError(f"{exc}; the answers: {last[0]}") from None
            api.kill()  # SIGKILL: nothing is flushed or handed over
            api.wait(10)
    first, second = (stable(r) for r in runs)
    assert [r for r in routes if first[r] != second[r]] == []
    assert [a["id"] for a in first["/v1/alerts"]["active"]] == ["a0"]


VOLATILE = {"age_s"}  # how old the view or a link is, by the clock


def stable(answers: dict) -> dict:
    """The answers without the fields that follow the clock, recent alerts per link."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    stripped = strip(answers)
    # Recent alerts come newest first as the view read them. Links' alerts sit in
    # different partitions, read in either order after a restart; each link's own
    # order is its partition's, and that must hold.
    by_link: dict[str, list] = {}
    for alert in stripped["/v1/alerts"]["recent"]:
        by_link.setdefault(alert["link"], []).append(alert)
    stripped["/v1/alerts"]["recent"] = by_link
    return stripped


def test_what_a_worker_aborted_never_reaches_the_view(kafka_bootstrap, topic_prefix, tmp_path):
    """A worker under exactly_once writes its outputs in transactions; one it aborts
    (killed, revoked) is redone by the next owner, so the view must skip it."""
    env = api_env(kafka_bootstrap, topic_prefix, tmp_path)
    topics = Topics(topic_prefix)
    base = base_url(env)
    linkcast(["topics", "create"], env)

    async def write() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_bootstrap, transactional_id=f"{topic_prefix}-tx"
        )
        await producer.start()
        try:
            for link, commit in (("ghost", False), ("real", True)):
                await producer.begin_transaction()
                value = link_state(link).model_dump_json().encode()
                key = link.encode()
                await producer.send_and_wait(topics.link_state, value, key=key, partition=0)
                if commit:
                    await producer.commit_transaction()
                else:
                    await producer.abort_transaction()
        finally:
            await producer.stop()

    asyncio.run(write())
    with linkcast_process(["api"], env, tmp_path / "api.log") as api:
        bearer = wait_until(lambda: token(base), 60, "the API to give a token")
        wait_until(lambda: get_json(base, "/v1/links/real", bearer), 60, "the committed link")
        page = get_json(base, "/v1/links", bearer)
        assert [x["link"] for x in page["links"]] == ["real"]  # "ghost" came first, aborted
        assert api.poll() is None

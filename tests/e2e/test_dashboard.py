"""The dashboard in headless Chromium, live from a real worker and API on a real broker.

Debian's chromium, driven by Playwright (no browser download). The page is
loaded without a token, signs in with a client id and secret, and must show
the links with their state, a chart of the selected link, and events from
the live stream. The worker does not forecast or alert yet, so the test
publishes a forecast, an alert and a model announcement for link-000 as the
worker and the registry will. The screenshot is saved under the test's tmp
folder (its path is printed) and copied to /tmp/linkcast-dashboard.png.
"""

import shutil
from pathlib import Path

import pytest

from streams.schemas import Alert, Forecast, HorizonForecast, ModelAnnouncement
from streams.topics import Topics
from tests.api_helpers import API_CLIENT, API_SECRET, api_env, base_url, get_json, publish, token
from tests.conftest import skip_or_fail_in_ci
from tests.e2e.test_pipeline import linkcast
from tests.helpers import free_port, linkcast_process, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

CHROMIUM = "/usr/bin/chromium"
KEPT_COPY = Path("/tmp/linkcast-dashboard.png")
LIVE_TIMEOUT_MS = 90_000
VERSION = "20260101T000000Z-00000e2e"  # shaped like a registry version name


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail_in_ci("playwright is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        skip_or_fail_in_ci(f"{CHROMIUM} is missing (make sysdeps installs Debian's chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def test_the_dashboard_signs_in_and_shows_live_links_forecast_and_alerts(
    browser, kafka_bootstrap, topic_prefix, tmp_path
):
    capacities = tmp_path / "capacities.json"
    capacities.write_text('{"link-000": 1e8, "link-001": 1e8, "link-002": 2e8}')
    env = {
        **api_env(kafka_bootstrap, topic_prefix, tmp_path),
        "LINKCAST_LINK_CAPACITIES_FILE": str(capacities),
        "LINKCAST_DATA_DIR": str(tmp_path / "worker-state"),
        "LINKCAST_WORKER_PORT": str(free_port()),
    }
    topics = Topics(topic_prefix)
    base = base_url(env)
    linkcast(["topics", "create"], env)
    simulate = ["simulate", "--links", "3", "--rate", "60", "--duration", "600"]
    with (
        linkcast_process(["worker"], env, tmp_path / "worker.log"),
        linkcast_process(["api"], env, tmp_path / "api.log"),
        linkcast_process([*simulate, "--start", "now", "--seed", "3"], env, tmp_path / "sim.log"),
    ):
        bearer = wait_until(lambda: token(base), 60, "the API to give a token")
        first = wait_until(
            lambda: (got := get_json(base, "/v1/links/link-000", bearer)) and got["window"] and got,
            120,
            "link-000 to have a window in the API",
        )
        made_at = first["window"]["bin_end_s"]
        bps = first["window"]["window_bps"]
        publish(
            kafka_bootstrap,
            [
                (topics.forecasts, forecast(made_at, bps), "link-000", None),
                (topics.alerts, alert(made_at), "link-000", None),
                (topics.models, model(), "forecaster", None),
            ],
        )

        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(base)
        page.fill("#client-id", API_CLIENT)
        page.fill("#client-secret", API_SECRET)
        page.click("#login-button")
        page.wait_for_selector("#links-table tbody tr[data-link='link-002']", timeout=30_000)
        page.click("#links-table tbody tr[data-link='link-000']")
        shows(
            page,
            "Number(document.getElementById('stream-figures').dataset.events || 0) >= 6"
            " && document.getElementById('stream-state').textContent === 'live'",
            "events from the live stream",
            problems,
        )
        shows(
            page,
            "Number(document.getElementById('chart').dataset.points) >= 12"
            " && document.getElementById('chart').dataset.forecast === '3'",
            "the chart of link-000 with its history and forecast",
            problems,
        )
        shows(
            page,
            "document.getElementById('alerts').textContent.includes('attack share')",
            "the alert",
            problems,
        )
        shot = tmp_path / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"dashboard screenshot: {shot}")
        shutil.copyfile(shot, KEPT_COPY)

        assert page.evaluate("() => localStorage.length + sessionStorage.length") == 0
        assert page.locator("#links-table tbody tr").count() == 3
        assert "+10 s" in page.inner_text("#forecast-table")
        assert "forecaster" in page.inner_text("#models")
        assert "%" in page.inner_text("#links-table tbody tr[data-link='link-000']")  # utilisation
        assert page.locator("#class-mix .mix").count() >= 1
        assert problems == [], problems  # no script error, no CSP violation
        page.close()


def shows(page, condition: str, what: str, problems: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Wait until ``condition`` (JS) holds; on timeout, say what the page showed instead."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(f"() => {condition}", timeout=LIVE_TIMEOUT_MS)
    except PlaywrightTimeout:
        state = page.evaluate(
            "() => ({state: document.getElementById('stream-state').textContent,"
            " figures: document.getElementById('stream-figures').textContent,"
            " chart: {...document.getElementById('chart').dataset},"
            " title: document.getElementById('detail-title').textContent,"
            " alerts: document.getElementById('alerts').textContent,"
            " login: document.getElementById('login-error').textContent})"
        )
        raise AssertionError(f"the page never showed {what}: {state}; errors {problems}") from None


def forecast(made_at_s: float, bps: float) -> Forecast:
    return Forecast(
        link="link-000",
        made_at_s=made_at_s,
        horizons=[
            HorizonForecast(
                horizon_s=h, bps=bps * g, lower_bps=bps * g * 0.7, upper_bps=bps * g * 1.4
            )
            for h, g in ((1.0, 1.0), (10.0, 1.1), (30.0, 1.25))
        ],
        model_version=VERSION,
    )


def alert(ts: float) -> Alert:
    return Alert(
        id="e2e-attack-1",
        link="link-000",
        state="raised",
        severity="critical",
        reason="attack share 62% above 50%",
        evidence={"attack_share": 0.62},
        ts=ts,
    )


def model() -> ModelAnnouncement:
    return ModelAnnouncement(
        kind="forecaster", version=VERSION, path="models/e2e", metrics={"mae_bps": 1.5e5}
    )

"""The metrics the rules and dashboards read, from a real worker and API and a real Prometheus.

One worker and one API on a real broker see a little simulated traffic, one record
that cannot be parsed (a rejection) and links with a tiny capacity (so the worker
raises alerts), until every kind of metric has samples. Then:
- every metric name in a rule or a dashboard query is exported by one of them;
- Debian's prometheus scrapes both on loopback with linkcast's rules, and its HTTP API
  answers with linkcast metrics, evaluated recording rules and every dashboard query.
"""

import asyncio
import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from deploy.processes import stop_process
from streams.topics import Topics
from tests.api_helpers import api_env, base_url, get_json, token
from tests.conftest import skip_or_fail_in_ci
from tests.helpers import free_port, linkcast_process, run_linkcast, wait_until
from tests.promql import (
    PROMETHEUS_OWN,
    RULES,
    dashboard_exprs,
    expand,
    is_recorded,
    used_metric_names,
)
from tests.unit.deploy.test_grafana_dashboards import VARIABLES

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

LINKS = ("link-000", "link-001")


class Stack:
    def __init__(self, worker_url: str, api_url: str, records_sent: int) -> None:
        self.worker_url, self.api_url = worker_url, api_url
        self.records_sent = records_sent  # to the flows topic, the bad one included

    def scrape(self) -> tuple[set[str], set[str]]:
        """Names of the samples the worker and the API export now."""
        return _sample_names(self.worker_url), _sample_names(self.api_url)


def _sample_names(base: str) -> set[str]:
    text = httpx.get(f"{base}/metrics", timeout=5).text
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def _send_raw(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, value, key=key)
        finally:
            await producer.stop()

    asyncio.run(send())


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("observability")
    prefix = f"t{uuid.uuid4().hex[:12]}"
    capacities = tmp / "capacities.json"
    capacities.write_text(json.dumps(dict.fromkeys(LINKS, 1000.0)))  # 1 kbit/s: alerts
    env = {
        **api_env(kafka_bootstrap, prefix, tmp),
        "LINKCAST_DATA_DIR": str(tmp / "worker-state"),
        "LINKCAST_WORKER_PORT": str(free_port()),
        "LINKCAST_MODELS_DIR": str(tmp / "registry"),
        "LINKCAST_LINK_CAPACITIES_FILE": str(capacities),
    }
    worker_url = f"http://127.0.0.1:{env['LINKCAST_WORKER_PORT']}"
    api_url = base_url(env)
    created = run_linkcast(["topics", "create"], env)
    assert created.returncode == 0, created.stderr
    with (
        linkcast_process(["worker"], env, tmp / "worker.log") as worker,
        linkcast_process(["api"], env, tmp / "api.log") as api,
    ):
        bearer = wait_until(lambda: token(api_url), 60, "the API to give a token")
        _send_raw(kafka_bootstrap, Topics(prefix).flows, b"link-000", b"{not json")
        # 75 s of capture time: the forecaster needs 60 bins of history, then scores.
        simulate = ["simulate", "--links", "2", "--duration", "75", "--rate", "20", "--seed", "7"]
        result = run_linkcast([*simulate, "--max"], env)
        assert result.returncode == 0, result.stderr
        simulated = re.search(r"(\d+) records", result.stdout + result.stderr)
        assert simulated is not None, result.stdout + result.stderr
        stack = Stack(worker_url, api_url, int(simulated.group(1)) + 1)
        wanted = {
            "linkcast_forecasts_scored_total",
            "linkcast_forecast_abs_error_bps_total",
            "linkcast_records_rejected_total",
            "linkcast_alerts_total",
            "linkcast_api_view_forecast_bps",
            "linkcast_api_view_alerts_active",
            "linkcast_api_view_class_bytes",
        }
        wait_until(
            lambda: wanted <= set.union(*stack.scrape()) or None,
            120,
            f"samples of {sorted(wanted)}",
        )
        for link in LINKS:
            assert get_json(api_url, f"/v1/links/{link}", bearer) is not None
        assert worker.poll() is None
        assert api.poll() is None
        yield stack


def test_every_metric_a_rule_or_dashboard_reads_is_exported(stack: Stack):
    worker, api = stack.scrape()
    exported = worker | api
    missing = {
        name: sorted(where)
        for name, where in used_metric_names().items()
        if not is_recorded(name) and name not in PROMETHEUS_OWN and name not in exported
    }
    assert missing == {}
    # the shared read is not an accident: both sides are read
    assert "linkcast_stage_latency_seconds_bucket" in worker
    assert "linkcast_api_request_duration_seconds_bucket" in api


def test_the_worker_shows_what_its_c_allocator_holds(stack: Stack):
    """streams.allocator's gauges: glibc's heap in use and free (this machine's libc)."""
    text = httpx.get(f"{stack.worker_url}/metrics", timeout=5).text
    families = text_string_to_metric_families(text)
    samples = {s.name: s.value for f in families for s in f.samples if not s.labels}
    # the worker holds its state, the models and Faust: tens of MiB at the least
    assert samples["linkcast_malloc_in_use_bytes"] > 10 << 20
    assert "linkcast_malloc_free_bytes" in samples


def test_the_worker_counts_the_link_states_it_stores(stack: Stack):
    """Each link with records is stored at a checkpoint: the cost that grows with links."""

    def stored() -> float:
        text = httpx.get(f"{stack.worker_url}/metrics", timeout=5).text
        families = text_string_to_metric_families(text)
        samples = {s.name: s.value for f in families for s in f.samples if not s.labels}
        return samples.get("linkcast_link_states_stored_total", 0.0)

    wait_until(lambda: stored() >= len(LINKS), 30, "both links' states stored")


@pytest.fixture(scope="module")
def prometheus(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        skip_or_fail_in_ci("prometheus is not installed (make sysdeps installs Debian's)")
    tmp = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": job,
                "static_configs": [{"targets": [url.removeprefix("http://")]}],
            }
            for job, url in (("linkcast-worker", stack.worker_url), ("linkcast-api", stack.api_url))
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    address = f"127.0.0.1:{free_port()}"
    with (tmp / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address={address}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://{address}"
        wait_until(lambda: _ready(base) or proc.poll() is not None, 30, "Prometheus to be ready")
        assert proc.poll() is None, (tmp / "prometheus.log").read_text()[-2000:]
        yield base
    finally:
        stop_process(proc)


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def query(base: str, promql: str) -> dict[str, Any] | None:
    """The data of Prometheus' answer to an instant query, or None while it does not answer."""
    try:
        answer = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5)
    except httpx.HTTPError:
        return None
    body: dict[str, Any] = answer.json()
    assert body["status"] == "success", (promql, body)
    return body["data"]


def values(base: str, promql: str) -> dict[str, float]:
    """job -> value of each series of an instant vector (empty while there is none)."""
    data = query(base, promql)
    if data is None:
        return {}
    return {r["metric"].get("job", ""): float(r["value"][1]) for r in data["result"]}


def test_a_real_prometheus_scrapes_the_worker_and_api_and_evaluates_the_rules(
    stack: Stack, prometheus: str
):
    wait_until(
        lambda: (
            values(prometheus, "linkcast_records_in_total")
            == {"linkcast-worker": stack.records_sent}
        ),
        30,
        f"Prometheus to read the worker's count of all {stack.records_sent} records",
    )
    # a scrape slower than its 1 s timeout reads as down for that one scrape: wait for both
    wait_until(
        lambda: values(prometheus, "up") == {"linkcast-worker": 1.0, "linkcast-api": 1.0},
        30,
        "both targets up",
    )
    wait_until(
        lambda: values(prometheus, "linkcast_api_view_links") == {"linkcast-api": 2.0},
        30,
        "Prometheus to read the API's 2 links",
    )
    evaluation = wait_until(
        lambda: values(prometheus, "linkcast_forecaster_evaluation_wape_ratio"),
        30,
        "the forecaster's evaluation WAPE",
    )
    assert 0 < evaluation["linkcast-worker"] < 1
    # a recording rule, evaluated by Prometheus from what it scraped
    lag = wait_until(
        lambda: values(prometheus, "job:linkcast_consumer_lag_records:sum"),
        30,
        "the consumer-lag recording rule",
    )
    assert lag["linkcast-worker"] >= 0
    groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert {g["name"] for g in groups} == {"linkcast-worker", "linkcast-forecast", "linkcast-api"}
    assert {r["health"] for g in groups for r in g["rules"]} <= {"ok", "unknown"}
    for board, title, expr in dashboard_exprs():
        assert query(prometheus, expand(expr, VARIABLES)) is not None, f"{board}: {title}"

"""The Prometheus scrape config and rules, checked and unit-tested by Debian's promtool."""

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.promql import PROMETHEUS, RULES, alerts, is_recorded, metric_names, rules

CONFIG = PROMETHEUS / "prometheus.yml"
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_accepts_the_rules(promtool):
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_accepts_the_scrape_config_and_finds_its_rule_file(promtool):
    result = run(promtool, "check", "config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_the_promtool_unit_tests_pass(promtool):
    assert RULE_TESTS
    result = run(promtool, "test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_every_alert_has_a_unit_test_where_it_fires_and_one_where_it_does_not():
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {alert["alert"] for alert in alerts()}
    assert names - fired == set(), "alerts no test makes fire"
    assert names - quiet == set(), "alerts no test shows quiet"
    assert {
        "LinkcastWorkerDown",
        "LinkcastConsumerLagGrowing",
        "LinkcastRejectionRateHigh",
        "LinkcastForecastErrorDrifting",
        "LinkcastApiLatencyHigh",
        "LinkcastViewStale",
    } <= names


def test_every_alert_waits_has_a_severity_and_says_what_to_do():
    for alert in alerts():
        assert alert.get("for"), alert["alert"]
        assert alert["labels"]["severity"] in {"warning", "critical"}, alert["alert"]
        assert alert["annotations"]["summary"], alert["alert"]
        assert alert["annotations"]["description"], alert["alert"]


def test_recording_rules_are_defined_before_they_are_read_and_named_by_convention():
    defined: set[str] = set()
    for rule in rules():
        for name in filter(is_recorded, metric_names(rule["expr"])):
            assert name in defined, f"{rule.get('record') or rule['alert']} reads {name} first"
        if "record" in rule:
            assert rule["record"].count(":") == 2, rule["record"]
            defined.add(rule["record"])


def test_the_scrape_jobs_are_the_ones_the_rules_select():
    config = yaml.safe_load(CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"linkcast-worker", "linkcast-api"}
    selected = {job for rule in rules() for job in jobs if job in rule["expr"]}
    assert selected == set(jobs)


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (job) (rate(a_total{route!="/v1/{x}"}[5m]))', {"a_total"}),
        ("histogram_quantile(0.99, sum by (le) (rate(b_bucket[$__rate_interval])))", {"b_bucket"}),
        ("x:y:z > on (job) 1.5 * max by (job) (c) and d offset 5m", {"x:y:z", "c", "d"}),
        ("absent(up{job='w'} == 1) or vector(0) unless e", {"up", "e"}),
        ("sum(f) without (instance) / 1e3 > bool 2", {"f"}),
    ],
)
def test_metric_names_reads_the_selected_series(expr, names):
    assert metric_names(expr) == names


def test_compose_runs_a_service_on_each_scrape_target_port_with_the_rules_beside_the_config():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    config = yaml.safe_load(CONFIG.read_text())
    port_variable = {"linkcast-worker": "LINKCAST_WORKER_PORT", "linkcast-api": "LINKCAST_API_PORT"}
    for job in config["scrape_configs"]:
        for group in job["static_configs"]:
            for target in group["targets"]:
                host, _, port = target.partition(":")
                assert host in services, f"{target}: no compose service {host}"
                env = services[host].get("environment", {})
                assert env.get(port_variable[job["job_name"]]) == port, target
    mounts = {
        volume.split(":")[1]: volume.split(":")[0]
        for volume in services["prometheus"]["volumes"]
        if volume.startswith("./")
    }
    config_dir = Path(next(t for t, s in mounts.items() if s.endswith("/prometheus.yml"))).parent
    for rule_file in config["rule_files"]:
        assert mounts.get(str(config_dir / rule_file)) == "./deploy/prometheus/rules.yml"

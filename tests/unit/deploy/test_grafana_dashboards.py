"""The provisioned Grafana datasource and dashboards, checked statically.

Every dashboard query is also parsed by Prometheus' own parser: promtool checks a
temporary rule file with one recording rule per query (Grafana variables filled in).
"""

import subprocess

import yaml

from tests.promql import (
    DASHBOARDS,
    GRAFANA,
    dashboard,
    dashboard_exprs,
    expand,
    is_recorded,
    metric_names,
    panels,
    rules,
)

DATASOURCE_UID = "linkcast-prometheus"
WITHOUT_QUERY = {"text", "row"}
#: Values for the dashboards' variables when a query is parsed or evaluated.
VARIABLES = {"__rate_interval": "1m", "horizon": "60"}


def test_the_datasource_is_prometheus_with_the_uid_the_dashboards_use():
    provisioned = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = provisioned["datasources"]
    assert provisioned["apiVersion"] == 1
    assert source["type"] == "prometheus"
    assert source["uid"] == DATASOURCE_UID
    assert source["url"].startswith("http://")


def test_the_dashboard_provider_reads_a_folder_of_files():
    provisioned = yaml.safe_load((GRAFANA / "provisioning/dashboards/linkcast.yml").read_text())
    (provider,) = provisioned["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/")


def test_every_dashboard_parses_with_a_unique_uid_and_panels_in_the_grid():
    assert len(DASHBOARDS) >= 3
    uids = [dashboard(path)["uid"] for path in DASHBOARDS]
    assert len(set(uids)) == len(uids)
    for path in DASHBOARDS:
        board = dashboard(path)
        assert board["title"], path.name
        assert board["schemaVersion"] >= 36, path.name
        ids = [panel["id"] for panel in panels(board)]
        assert len(set(ids)) == len(ids), path.name
        for panel in panels(board):
            pos = panel["gridPos"]
            assert pos["x"] >= 0, (path.name, panel["title"])
            assert pos["x"] + pos["w"] <= 24, (path.name, panel["title"])


def test_every_panel_has_the_datasource_and_a_query():
    for path in DASHBOARDS:
        board = dashboard(path)
        for variable in board["templating"]["list"]:
            assert variable["datasource"]["uid"] == DATASOURCE_UID, variable["name"]
        for panel in panels(board):
            if panel["type"] in WITHOUT_QUERY:
                continue
            where = f"{path.name}: {panel['title']}"
            assert panel["datasource"]["uid"] == DATASOURCE_UID, where
            assert panel["targets"], where
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == DATASOURCE_UID, where
                assert target["expr"].strip(), where
                assert metric_names(target["expr"]), where


def test_every_recording_rule_a_dashboard_reads_is_defined():
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    for board, title, expr in dashboard_exprs():
        for name in filter(is_recorded, metric_names(expr)):
            assert name in recorded, f"{board}: {title} reads {name}, which no rule records"


def test_the_dashboards_chart_what_the_issue_asks_for():
    read: set[str] = set()
    for _, _, expr in dashboard_exprs():
        read |= metric_names(expr)
    wanted = {
        "linkcast_api_view_bandwidth_bps",  # bandwidth ...
        "linkcast_api_view_forecast_bps",  # ... against its forecast and interval
        "linkcast_api_view_class_bytes",  # class mix
        "ALERTS",  # Prometheus' alerts
        "linkcast_api_view_alerts_active",  # link alerts
        "job:linkcast_records_in:rate5m",  # throughput
        "job_stage:linkcast_stage_latency_seconds:p99_rate5m",  # stage latencies
        "job_horizon_s:linkcast_forecast_wape:ratio_rate1h",  # model quality
        "linkcast_forecaster_evaluation_wape_ratio",
        "job_route:linkcast_api_request_duration_seconds:p99_rate5m",  # API
    }
    assert wanted - read == set()
    bounds = {
        bound
        for _, _, expr in dashboard_exprs()
        for bound in ("lower", "median", "upper")
        if f'bound="{bound}"' in expr
    }
    assert bounds == {"lower", "median", "upper"}


def test_prometheus_parses_every_dashboard_query(promtool, tmp_path):
    queries = [
        {"record": f"dashboard:query_{n}:check", "expr": expand(expr, VARIABLES)}
        for n, (_, _, expr) in enumerate(dashboard_exprs())
    ]
    assert len(queries) >= 20
    checked = tmp_path / "dashboard-queries.yml"
    checked.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": queries}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(checked)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def test_the_traffic_dashboard_says_what_its_charts_are_not():
    """Per-link series are not in Prometheus; the dashboard says where they are."""
    board = dashboard(GRAFANA / "dashboards" / "linkcast-traffic.json")
    texts = [p["options"]["content"] for p in panels(board) if p["type"] == "text"]
    assert any("/v1/links/{link}" in text and "series per link" in text for text in texts)

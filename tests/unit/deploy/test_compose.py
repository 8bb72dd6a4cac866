"""docker-compose.yml, checked statically (no Docker engine runs here).

It parses; every linkcast service runs a real `linkcast` subcommand; every LINKCAST_
variable it sets is one a settings class reads; secrets have no defaults; dependencies,
ports and volumes agree with each other and with the Prometheus and Grafana files the
compose file mounts.
"""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.cli import build_parser
from tests.unit.deploy.linkcast_env import (
    REPO,
    known_variables,
    settings_class_names_in_source,
    settings_classes,
)

COMPOSE = REPO / "docker-compose.yml"
REQUIRED = re.compile(r"^\$\{(?P<name>[A-Z_][A-Z0-9_]*):\?[^}]+\}$")
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?P<op>:?[-?+])?[^}]*\}")
SECRET_WORDS = ("KEY", "SECRET", "PASSWORD", "TOKEN", "CLIENTS_FILE")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def linkcast_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: s
        for name, s in compose["services"].items()
        if s.get("image", "").split(":")[0] == "linkcast"
    }


def split_volume(volume: str) -> tuple[str, str]:
    """'source:target[:mode]' -> (source, target); a source may be '${VAR:?message}'."""
    if volume.startswith("${"):
        end = volume.index("}") + 1
        source, rest = volume[:end], volume[end + 1 :]
    else:
        source, _, rest = volume.partition(":")
    return source, rest.split(":")[0]


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a named volume, a host path or an interpolation)."""
    return {target: source for source, target in map(split_volume, service.get("volumes", []))}


def published(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """'127.0.0.1:8000:8000' -> [('127.0.0.1', 8000, 8000)]."""
    out = []
    for port in service.get("ports", []):
        host_ip, host_port, container_port = str(port).rsplit(":", 2)
        out.append((host_ip, int(host_port), int(container_port)))
    return out


def workers(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in linkcast_services(compose).items() if s["command"] == ["worker"]}


def test_the_settings_classes_found_are_all_there_are():
    assert {c.__name__ for c in settings_classes()} == settings_class_names_in_source()


def test_every_linkcast_command_is_a_real_subcommand(compose):
    parser = build_parser()
    services = linkcast_services(compose)
    assert {"topics", "worker-1", "worker-2", "api", "replay"} <= set(services)
    for name, service in services.items():
        try:
            args = parser.parse_args(service["command"])
        except SystemExit:
            pytest.fail(f"{name}: 'linkcast {' '.join(service['command'])}' does not parse")
        assert callable(args.func), name
        assert args.command == service["command"][0]


def test_every_linkcast_variable_is_a_setting(compose):
    known = known_variables()
    assert "LINKCAST_WORKER_PORT" in known
    assert "LINKCAST_API_JWT_KEY" in known
    for name, service in linkcast_services(compose).items():
        env = service.get("environment", {})
        assert isinstance(env, dict), f"{name}: environment as a mapping, please"
        unknown = {k for k in env if k.startswith("LINKCAST_")} - known
        assert not unknown, f"{name} sets variables no settings class reads: {unknown}"
        assert not {k for k in env if not k.startswith("LINKCAST_")}, name


def test_secrets_have_no_defaults(compose):
    for name, service in compose["services"].items():
        for key, value in service.get("environment", {}).items():
            if any(word in key for word in SECRET_WORDS) and not str(value).startswith("/"):
                assert REQUIRED.match(str(value)), f"{name}.{key} needs a ${{{key}:?...}} guard"
        for source, _ in map(split_volume, service.get("volumes", [])):
            for match in INTERPOLATION.finditer(source):
                if any(word in match["name"] for word in SECRET_WORDS):
                    assert match["op"] == ":?", f"{name}: {source} needs a :? guard"
    text = COMPOSE.read_text()
    for match in INTERPOLATION.finditer(text):
        if any(word in match["name"] for word in SECRET_WORDS):
            assert match["op"] == ":?", f"{match[0]} has a default or may be empty"


def test_the_api_runs_in_production_mode_with_its_key_and_clients_file(compose):
    api = linkcast_services(compose)["api"]
    env = api["environment"]
    assert "LINKCAST_API_MODE" not in env  # production is the default
    assert REQUIRED.match(env["LINKCAST_API_JWT_KEY"])["name"] == "LINKCAST_API_JWT_KEY"
    source = mounts(api)[env["LINKCAST_API_CLIENTS_FILE"]]
    assert REQUIRED.match(source)["name"] == "LINKCAST_API_CLIENTS_FILE"
    assert api["volumes"][0].endswith(":ro")


def test_dependencies_are_services_and_wait_for_health(compose):
    services = compose["services"]
    for name, service in services.items():
        for dependency, how in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            condition = how["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
            if condition == "service_completed_successfully":
                assert services[dependency].get("restart") == "no", dependency
    assert services["topics"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    for name in [*workers(compose), "api"]:
        assert services[name]["depends_on"]["topics"] == {
            "condition": "service_completed_successfully"
        }, name
        assert services[name]["healthcheck"]["test"][-2:] == ["-m", "deploy.healthcheck"]
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_two_workers_in_one_group_each_with_its_own_named_state_volume(compose):
    declared = set(compose["volumes"])
    found = workers(compose)
    assert len(found) == 2
    prefixes = {s["environment"].get("LINKCAST_TOPIC_PREFIX") for s in found.values()}
    assert len(prefixes) == 1, "one consumer group: the same topic prefix"
    state_volumes = set()
    for name, service in found.items():
        env = service["environment"]
        assert env["LINKCAST_WORKER_HOST"] == "0.0.0.0", f"{name}: Prometheus scrapes it"
        state = mounts(service)[env["LINKCAST_DATA_DIR"]]
        assert state in declared, f"{name}: state on a named volume"
        state_volumes.add(state)
    assert len(state_volumes) == 2, "each worker keeps its own RocksDB folder"
    kafka = compose["services"]["kafka"]
    assert mounts(kafka)[kafka["environment"]["KAFKA_LOG_DIRS"]] in declared


def test_every_named_volume_is_declared_and_every_host_path_exists(compose):
    declared = set(compose["volumes"])
    used = set()
    for name, service in compose["services"].items():
        for target, source in mounts(service).items():
            assert target.startswith("/"), f"{name}: {target}"
            if source.startswith("${"):
                continue  # a path the user gives
            if source.startswith(("./", "/")):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
                continue
            assert source in declared, f"{name}: volume {source} is not declared"
            used.add(source)
    assert used == declared, f"declared but unused: {declared - used}"


def test_ports_are_local_and_each_is_the_one_its_service_listens_on(compose):
    services = compose["services"]
    listens = {
        "api": int(services["api"]["environment"]["LINKCAST_API_PORT"]),
        "prometheus": 9090,
        "grafana": 3000,
    }
    host_ports = []
    for name, service in services.items():
        for host_ip, host_port, container_port in published(service):
            assert host_ip == "127.0.0.1", f"{name} publishes beyond loopback"
            assert container_port == listens[name], name
            host_ports.append(host_port)
    assert len(host_ports) == len(set(host_ports))
    assert sorted(n for n, s in services.items() if published(s)) == sorted(listens)


def test_replay_and_simulator_wait_behind_profiles(compose):
    services = linkcast_services(compose)
    assert services["replay"]["profiles"] == ["replay"]
    assert services["replay"]["command"][0] == "replay"
    assert services["simulator"]["profiles"] == ["simulate"]
    always = [n for n, s in compose["services"].items() if not s.get("profiles")]
    assert "replay" not in always
    assert "simulator" not in always


def prometheus_config(compose: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    service = compose["services"]["prometheus"]
    volumes = mounts(service)
    config_flag = next(a for a in service["command"] if a.startswith("--config.file="))
    config_path = config_flag.split("=", 1)[1]
    config = yaml.safe_load((REPO / volumes[config_path]).read_text())
    return config, volumes


def test_prometheus_scrapes_every_worker_and_the_api_on_their_ports(compose):
    config, _ = prometheus_config(compose)
    services = compose["services"]
    targets = {
        job["job_name"]: {t for sc in job["static_configs"] for t in sc["targets"]}
        for job in config["scrape_configs"]
    }
    worker_targets = {
        f"{name}:{s['environment']['LINKCAST_WORKER_PORT']}" for name, s in workers(compose).items()
    }
    assert targets["linkcast-worker"] == worker_targets
    api_port = services["api"]["environment"]["LINKCAST_API_PORT"]
    assert targets["linkcast-api"] == {f"api:{api_port}"}
    paths = {job.get("metrics_path", "/metrics") for job in config["scrape_configs"]}
    assert paths == {"/metrics"}


def test_prometheus_finds_its_rule_files_where_compose_mounts_them(compose):
    config, volumes = prometheus_config(compose)
    config_path = next(
        a.split("=", 1)[1]
        for a in compose["services"]["prometheus"]["command"]
        if a.startswith("--config.file=")
    )
    assert config["rule_files"], "the rules are loaded"
    for rule_file in config["rule_files"]:
        in_container = str(Path(config_path).parent / rule_file)
        assert in_container in volumes, f"{rule_file} is not mounted at {in_container}"
        groups = yaml.safe_load((REPO / volumes[in_container]).read_text())["groups"]
        assert groups


def test_grafana_provisioning_points_at_the_compose_prometheus_and_dashboards(compose):
    grafana = compose["services"]["grafana"]
    volumes = mounts(grafana)
    provisioning = REPO / volumes["/etc/grafana/provisioning"]
    datasources = [
        ds
        for path in sorted((provisioning / "datasources").glob("*.y*ml"))
        for ds in yaml.safe_load(path.read_text()).get("datasources", [])
    ]
    prometheus = [ds for ds in datasources if ds["type"] == "prometheus"]
    assert prometheus, "a provisioned Prometheus datasource"
    port = next(c for _, _, c in published(compose["services"]["prometheus"]))
    assert {ds["url"].rstrip("/") for ds in prometheus} == {f"http://prometheus:{port}"}
    providers = [
        p
        for path in sorted((provisioning / "dashboards").glob("*.y*ml"))
        for p in yaml.safe_load(path.read_text()).get("providers", [])
    ]
    assert providers, "a provisioned dashboards provider"
    for provider in providers:
        folder = provider["options"]["path"]
        assert folder in volumes, f"dashboards provider reads {folder}, which is not mounted"
        assert list((REPO / volumes[folder]).glob("*.json")), f"no dashboards in {folder}"

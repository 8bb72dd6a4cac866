"""docker-compose.yml, checked statically (no Docker engine is needed)."""

from pathlib import Path

import yaml

from api.settings import ApiSettings
from deploy.cli import build_parser
from streams.settings import StreamSettings

COMPOSE = Path(__file__).resolve().parents[3] / "docker-compose.yml"


def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def linkcast_services() -> dict:
    return {name: s for name, s in services().items() if s.get("image", "").startswith("linkcast")}


def test_every_linkcast_command_is_a_real_subcommand():
    parser = build_parser()
    for name, service in linkcast_services().items():
        args = parser.parse_args(service["command"])  # exits (fails the test) on an unknown one
        assert callable(args.func), name


def test_every_linkcast_variable_is_a_setting():
    known = {
        f"LINKCAST_{field.upper()}"
        for field in {*StreamSettings.model_fields, *ApiSettings.model_fields}
    }
    for name, service in linkcast_services().items():
        unknown = {k for k in service.get("environment", {}) if k.startswith("LINKCAST_")} - known
        assert not unknown, f"{name} sets variables no settings class reads: {unknown}"


def split_volume(volume: str) -> tuple[str, str]:
    """'source:target[:mode]' -> (source, target); a source may be '${VAR:?message}'."""
    if volume.startswith("${"):
        end = volume.index("}") + 1
        source, rest = volume[:end], volume[end + 1 :]
    else:
        source, _, rest = volume.partition(":")
    return source, rest.split(":")[0]


def test_dependencies_and_volumes_are_declared():
    doc = yaml.safe_load(COMPOSE.read_text())
    names = set(doc["services"])
    for name, service in doc["services"].items():
        assert set(service.get("depends_on", {})) <= names, name
        for volume in service.get("volumes", []):
            source, _ = split_volume(volume)
            if source.startswith(("${", "./", "/")):  # a file or folder of the host
                continue
            assert source in doc["volumes"], f"{name}: {volume}"
    assert linkcast_services()["worker"]["volumes"], "the worker keeps RocksDB state on a volume"


def test_the_api_runs_in_production_mode_with_its_key_and_clients_required():
    api = linkcast_services()["api"]
    env = api["environment"]
    assert "LINKCAST_API_MODE" not in env  # production is the default
    assert env["LINKCAST_API_JWT_KEY"].startswith("${LINKCAST_API_JWT_KEY:?")
    mounted = {target: source for source, target in map(split_volume, api["volumes"])}
    assert mounted[env["LINKCAST_API_CLIENTS_FILE"]].startswith("${LINKCAST_API_CLIENTS_FILE:?")


def test_the_api_port_published_is_the_one_it_listens_on():
    api = linkcast_services()["api"]
    port = api["environment"]["LINKCAST_API_PORT"]
    assert api["ports"] == [f"127.0.0.1:{port}:{port}"]

"""deploy/Dockerfile and .dockerignore, checked statically (no Docker engine runs here)."""

import fnmatch
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from tests.unit.deploy.linkcast_env import REPO

DOCKERFILE = REPO / "deploy" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
SECRET_WORDS = ("KEY", "SECRET", "PASSWORD", "TOKEN", "CLIENTS")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for word, rest in instructions():
        if word == "FROM":
            found.append([])
        found[-1].append((word, rest))
    return found


def test_multi_stage_on_slim_bases():
    built = stages()
    assert len(built) >= 2, "a build stage and a run stage"
    for stage in built:
        image = stage[0][1].split()[0]
        assert "slim" in image, f"{image} is not a slim base"
        assert ":" in image, f"{image}: pin a tag"
        assert not image.endswith(":latest"), f"{image}: pin a tag"
    final = built[-1]
    copies = [rest for word, rest in final if word == "COPY"]
    assert copies
    assert all(c.startswith("--from=") for c in copies), (
        "the run stage takes only the built virtualenv, no sources or build tools"
    )


def test_runs_as_an_unprivileged_user():
    final = stages()[-1]
    users = [rest for word, rest in final if word == "USER"]
    assert users, "the run stage names a user"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    uid = re.search(r"--uid (\d+)", " ".join(rest for word, rest in final if word == "RUN"))
    assert uid
    assert user in {uid[1], "linkcast"}
    assert int(uid[1]) >= 1000


def test_one_image_for_every_role_with_a_health_check():
    final = stages()[-1]
    entry = [rest for word, rest in final if word == "ENTRYPOINT"]
    assert entry == ['["linkcast"]'], "the command picks the role"
    health = [rest for word, rest in final if word == "HEALTHCHECK"]
    assert len(health) == 1
    command = health[0].split("CMD", 1)[1].strip()
    assert command == '["python", "-m", "deploy.healthcheck"]'
    assert (REPO / "deploy" / "healthcheck.py").is_file()
    exposed = {int(p) for word, rest in final if word == "EXPOSE" for p in rest.split()}
    from api.settings import ApiSettings
    from streams.settings import StreamSettings

    defaults = {
        StreamSettings.model_fields["worker_port"].default,
        ApiSettings.model_fields["api_port"].default,
    }
    assert exposed == defaults


def test_no_secret_and_no_data_baked_in():
    for word, rest in instructions():
        if word in {"ENV", "ARG", "LABEL"}:
            for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", rest):
                assert not any(s in name.upper() for s in SECRET_WORDS), f"{word} {name}"
        if word in {"COPY", "ADD"}:
            sources = shlex.split(rest)[:-1]
            for source in sources:
                if source.startswith("--"):
                    continue
                assert not source.startswith((".linkcast", "tests", "data", "..")), source
    env = dict(
        item.split("=", 1)
        for word, rest in stages()[-1]
        if word == "ENV"
        for item in shlex.split(rest)
    )
    assert env["LINKCAST_DATA_DIR"].startswith("/var/lib/"), "state goes to a mountable path"


def build_sources() -> list[str]:
    build = stages()[0]
    sources = []
    for word, rest in build:
        if word == "COPY":
            sources.extend(s.rstrip("/") for s in shlex.split(rest)[:-1] if not s.startswith("--"))
    return sources


def ignored(path: str) -> bool:
    """Whether .dockerignore keeps ``path`` out of the build context (last match wins)."""
    result = False
    for line in DOCKERIGNORE.read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        candidates = [path, *(str(p) for p in Path(path).parents if str(p) != ".")]
        if pattern.startswith("**/"):
            tail = pattern[3:]
            hit = any(fnmatch.fnmatch(Path(c).name, tail) for c in candidates)
        else:
            hit = any(fnmatch.fnmatch(c, pattern) for c in candidates)
        if hit:
            result = not negate
    return result


def test_the_build_context_holds_what_the_image_copies_and_nothing_private():
    sources = build_sources()
    assert {"pyproject.toml", "streams", "producers", "models", "api", "deploy"} <= set(sources)
    for source in sources:
        assert (REPO / source).exists(), source
        assert not ignored(source), f".dockerignore drops {source}, which the image copies"
    for private in [
        ".linkcast/models/current.json",
        ".venv/bin/python",
        "tests/conftest.py",
        "deploy/k8s/base/kustomization.yaml",
        "clients.json",
        "api/__pycache__/app.cpython-311.pyc",
        ".git/config",
    ]:
        assert ignored(private), f"{private} would be sent to the image build"


@pytest.mark.parametrize("kind", ["classifier", "forecaster"])
def test_the_default_models_are_package_data(kind):
    """`pip install .` in the image must carry models/default, or no model serves."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["models"]
    default = REPO / "models" / "default"
    files = [p.relative_to(REPO / "models").as_posix() for p in default.rglob("*") if p.is_file()]
    of_kind = [f for f in files if f.startswith(f"default/{kind}/")]
    assert of_kind, f"no packaged {kind}"
    for name in files:
        assert any(fnmatch.fnmatch(name, p) for p in patterns), f"{name} is not package data"
    for name in [*of_kind, "default/current.json"]:
        assert not ignored(f"models/{name}"), name

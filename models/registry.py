"""The model registry: versions as folders, one current version per kind, promote and roll back.

Layout under the registry's root::

    <root>/<kind>/<version>/meta.json     what, when, from which data, how good
    <root>/<kind>/<version>/<artifacts>   model files named in meta.json with their sha256
    <root>/current.json                   {"<kind>": {"current": v, "previous": [older, ...]}}

Loading a version checks every artifact's sha256 against meta.json and the
recorded feature schema against the code's (``features.feature_schema``), and
refuses a mismatch with a message that says what to do. Artifacts are never
unpickled: the tree is a skops file loaded with an explicit list of trusted
types, the LSTM's weights an ``.npz`` read with ``allow_pickle=False`` (and
the Keras ``.keras`` file, kept for training and the engines' benchmark, loads
in Keras' safe mode).

A registry without a current version of a kind falls back to the models
shipped with linkcast (``models/default``), so a fresh install classifies and
forecasts from its first record.
"""

import hashlib
import json
import os
import platform
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from models.exceptions import IntegrityError, RegistryError, SchemaMismatchError
from models.features import feature_schema

Kind = Literal["classifier", "forecaster"]
KINDS: tuple[Kind, ...] = ("classifier", "forecaster")
PACKAGED = Path(__file__).parent / "default"
#: A version's name: its UTC creation time and the start of its artifacts' digest.
VERSION_PATTERN = r"^\d{8}T\d{6}Z-[0-9a-f]{8}$"
_VERSION = re.compile(VERSION_PATTERN)
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")


def check_name(name: str) -> str:
    """``name`` if it is a version name; a name from a message or a command line never
    becomes a path outside the registry."""
    if not _VERSION.match(name):
        raise RegistryError(
            f"{name!r} is not a model version name (like 20261123T191846Z-223dae8b)"
        )
    return name


#: The parts of the feature schema each kind depends on.
SCHEMA_KEYS: dict[str, tuple[str, ...]] = {
    "classifier": ("flow_features", "flow_features_version", "classes"),
    "forecaster": ("series_channels", "series_features_version"),
}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    import numpy
    import sklearn

    versions = {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
    }
    try:
        import keras
        import tensorflow

        versions |= {"tensorflow": tensorflow.__version__, "keras": keras.__version__}
    except ImportError:  # a classifier trained where TensorFlow is not installed
        pass
    return versions


@dataclass(frozen=True)
class Version:
    """One model version on disk."""

    kind: Kind
    name: str
    path: Path
    meta: dict[str, Any]

    def artifact(self, role: str) -> Path:
        """The verified path of an artifact (``model``, ``weights``, ...)."""
        entry = self.meta["artifacts"].get(role)
        if entry is None:
            raise RegistryError(f"{self.kind} {self.name} has no {role} artifact")
        if not _FILE.match(str(entry["file"])):
            raise IntegrityError(
                f"{self.kind} {self.name}: artifact file {entry['file']!r} is "
                "not a plain file name in the version's folder"
            )
        path = self.path / entry["file"]
        if not path.is_file():
            raise IntegrityError(f"{path} is missing; the version folder is incomplete")
        actual = sha256_of(path)
        if actual != entry["sha256"]:
            raise IntegrityError(
                f"{path} has sha256 {actual[:12]}..., but {entry['sha256'][:12]}... was recorded "
                "when it was trained; it was changed or damaged. Do not load it: train again "
                "or restore the folder."
            )
        return path

    def check_schema(self) -> None:
        """Refuse a version trained on other features than the code computes now."""
        recorded = self.meta.get("feature_schema", {})
        current = feature_schema()
        for key in SCHEMA_KEYS[self.kind]:
            if recorded.get(key) != current[key]:
                raise SchemaMismatchError(
                    f"{self.kind} {self.name} was trained with {key} = {recorded.get(key)!r}, "
                    f"but this linkcast computes {current[key]!r}; train a new version "
                    f"('linkcast train {self.kind}') or run the linkcast release it was made with"
                )


class Registry:
    """Model versions under ``root``; reads fall back to the packaged defaults."""

    def __init__(self, root: Path, fallback: Path | None = PACKAGED) -> None:
        self.root = root
        self.fallback = fallback if fallback is not None and fallback != root else None

    # ---- reading ----------------------------------------------------------

    def versions(self, kind: Kind) -> list[Version]:
        """Every version of ``kind`` here (not the fallback's), oldest first."""
        folder = self.root / kind
        found = (
            [self._read(kind, p) for p in folder.iterdir() if (p / "meta.json").is_file()]
            if folder.is_dir()
            else []
        )
        return sorted(found, key=lambda v: (v.meta.get("created_at", ""), v.name))

    def get(self, kind: Kind, name: str) -> Version:
        check_name(name)
        for root in (self.root, self.fallback):
            if root is not None and (root / kind / name / "meta.json").is_file():
                return self._read(kind, root / kind / name)
        raise RegistryError(
            f"no {kind} version {name!r} under {self.root}; 'linkcast models list' shows them"
        )

    def current(self, kind: Kind) -> Version:
        """The version the stream and the API use."""
        for root in (self.root, self.fallback):
            if root is None:
                continue
            name = _pointers(root).get(kind, {}).get("current")
            if name:
                return self._read(kind, root / kind / check_name(name))
        raise RegistryError(
            f"no current {kind} under {self.root}; train one with 'linkcast train {kind}'"
        )

    def history(self, kind: Kind) -> list[str]:
        """Versions that were current before, most recent first."""
        return list(_pointers(self.root).get(kind, {}).get("previous", []))

    # ---- writing ----------------------------------------------------------

    def add(self, kind: Kind, folder: Path, meta: dict[str, Any]) -> Version:
        """Record ``folder`` (holding the artifacts named in ``meta``) as a new version."""
        artifacts = {
            role: {"file": file, "sha256": sha256_of(folder / file)}
            for role, file in meta.pop("artifact_files").items()
        }
        created = datetime.now(UTC)
        digest = hashlib.sha256("".join(a["sha256"] for a in artifacts.values()).encode())
        name = f"{created:%Y%m%dT%H%M%SZ}-{digest.hexdigest()[:8]}"
        full = {
            "kind": kind,
            "version": name,
            "created_at": created.isoformat(timespec="seconds"),
            "artifacts": artifacts,
            "feature_schema": feature_schema(),
            "libraries": library_versions(),
            **meta,
        }
        (folder / "meta.json").write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
        target = self.root / kind / name
        target.parent.mkdir(parents=True, exist_ok=True)
        folder.rename(target)
        return self._read(kind, target)

    def promote(self, kind: Kind, name: str) -> Version:
        """Make ``name`` the current version; the one it replaces can be rolled back to."""
        version = self.get(kind, name)
        if version.path.parent.parent != self.root:
            raise RegistryError(
                f"{kind} {name} is the packaged default, not a version of {self.root}: it serves "
                f"when nothing is promoted there ('linkcast models rollback {kind}' until none is)"
            )
        version.check_schema()
        for role in version.meta["artifacts"]:
            version.artifact(role)
        pointers = _pointers(self.root)
        entry = pointers.setdefault(kind, {"current": None, "previous": []})
        if entry["current"] == name:
            return version
        if entry["current"]:
            entry["previous"] = [entry["current"], *entry["previous"]][:20]
        entry["current"] = name
        _write_pointers(self.root, pointers)
        return version

    def rollback(self, kind: Kind) -> Version:
        """Make the previous current version current again (the packaged default if none)."""
        pointers = _pointers(self.root)
        entry = pointers.get(kind, {"current": None, "previous": []})
        if not entry["current"]:
            raise RegistryError(f"nothing to roll back: no {kind} was promoted under {self.root}")
        target = entry["previous"][0] if entry["previous"] else None
        if target is not None:
            version = self.get(kind, target)
            version.check_schema()
            for role in version.meta["artifacts"]:
                version.artifact(role)
        entry["current"] = target
        entry["previous"] = entry["previous"][1:]
        pointers[kind] = entry
        _write_pointers(self.root, pointers)
        return self.current(kind)

    @staticmethod
    def _read(kind: Kind, path: Path) -> Version:
        try:
            meta = json.loads((path / "meta.json").read_text())
        except (OSError, ValueError) as exc:
            raise RegistryError(f"{path / 'meta.json'} cannot be read: {exc}") from exc
        if meta.get("kind") != kind:
            raise RegistryError(f"{path} holds a {meta.get('kind')!r}, not a {kind}")
        return Version(kind, path.name, path, meta)


def _pointers(root: Path) -> dict[str, Any]:
    path = root / "current.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise RegistryError(f"{path} is not valid JSON ({exc}); fix or remove it") from exc
    return data if isinstance(data, dict) else {}


def _write_pointers(root: Path, pointers: dict[str, Any]) -> None:
    """Write current.json atomically, so a reader never sees half of it."""
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".current-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(pointers, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, root / "current.json")

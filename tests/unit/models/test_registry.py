"""Versions, promotion, rollback, and refusing damaged or mismatched artifacts."""

import json
from pathlib import Path

import numpy as np
import pytest

from models.exceptions import IntegrityError, RegistryError, SchemaMismatchError
from models.registry import PACKAGED, Registry
from models.runtime import load_classifier, load_forecaster


def _add(registry: Registry, tmp_path: Path, tag: str) -> str:
    folder = tmp_path / f"staging-{tag}"
    folder.mkdir()
    (folder / "weights.npz").write_bytes(tag.encode())
    version = registry.add(
        "forecaster",
        folder,
        {
            "artifact_files": {"weights": "weights.npz"},
            "params": {},
            "summary": {"smape": 1.0},
        },
    )
    return version.name


def test_promote_and_rollback(tmp_path):
    registry = Registry(tmp_path / "reg", fallback=None)
    first, second = _add(registry, tmp_path, "a"), _add(registry, tmp_path, "b")
    assert [v.name for v in registry.versions("forecaster")] == sorted([first, second])
    with pytest.raises(RegistryError, match="no current forecaster"):
        registry.current("forecaster")
    registry.promote("forecaster", first)
    registry.promote("forecaster", second)
    assert registry.current("forecaster").name == second
    assert registry.history("forecaster") == [first]
    assert registry.rollback("forecaster").name == first
    with pytest.raises(RegistryError, match="no current forecaster"):
        registry.rollback("forecaster")  # back before the first promotion: nothing is current
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback("forecaster")


def test_a_changed_artifact_is_refused(tmp_path):
    registry = Registry(tmp_path / "reg", fallback=None)
    name = _add(registry, tmp_path, "a")
    version = registry.get("forecaster", name)
    (version.path / "weights.npz").write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match="changed or damaged"):
        version.artifact("weights")
    with pytest.raises(IntegrityError):
        registry.promote("forecaster", name)


def test_a_feature_schema_mismatch_is_refused_with_a_way_out(tmp_path):
    registry = Registry(tmp_path / "reg", fallback=None)
    name = _add(registry, tmp_path, "a")
    meta_path = registry.get("forecaster", name).path / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["feature_schema"]["series_channels"] = ["level", "something_else"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(SchemaMismatchError, match="linkcast train forecaster"):
        registry.get("forecaster", name).check_schema()


def test_packaged_models_load_and_serve(tmp_path):
    registry = Registry(tmp_path / "empty")  # nothing here: the packaged defaults serve
    classifier = load_classifier(registry.current("classifier"))
    forecaster = load_forecaster(registry.current("forecaster"))
    assert registry.current("classifier").path.parent.parent == PACKAGED
    [(cls, confidence)] = classifier.classify(
        [{"link": "l", "ts": 1.0, "bytes": 120, "packets": 2, "proto": 17, "dport": 53}]
    )
    assert 0 < confidence <= 1
    assert isinstance(cls, str)
    t = forecaster.window_bins
    bps = np.full((3, t), 1e6)
    out = forecaster.forecast(bps, np.arange(t)[None, :] + np.zeros((3, 1)), 1.0)
    assert out.shape == (3, len(forecaster.horizons), 3)
    assert np.all(out[:, :, 0] <= out[:, :, 2])


@pytest.mark.parametrize(
    "name", ["/tmp/evil", "../forecaster/x", "20261123T191846Z-223dae8b/..", ""]
)
def test_a_name_that_is_not_a_version_never_becomes_a_path(tmp_path, name):
    with pytest.raises(RegistryError, match="not a model version name"):
        Registry(tmp_path / "reg").get("forecaster", name)


def test_an_artifact_outside_its_folder_is_refused(tmp_path):
    registry = Registry(tmp_path / "reg", fallback=None)
    version = registry.get("forecaster", _add(registry, tmp_path, "a"))
    meta = json.loads((version.path / "meta.json").read_text())
    meta["artifacts"]["weights"]["file"] = "../../elsewhere.npz"
    (version.path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(IntegrityError, match="not a plain file name"):
        registry.get("forecaster", version.name).artifact("weights")


def test_rollback_to_a_damaged_version_changes_nothing(tmp_path):
    registry = Registry(tmp_path / "reg", fallback=None)
    first, second = _add(registry, tmp_path, "a"), _add(registry, tmp_path, "b")
    registry.promote("forecaster", first)
    registry.promote("forecaster", second)
    (registry.get("forecaster", first).path / "weights.npz").write_bytes(b"damaged")
    with pytest.raises(IntegrityError):
        registry.rollback("forecaster")
    assert registry.current("forecaster").name == second

"""Announcements: a good one swaps the model, a bad or unloadable one never stops anything."""

import asyncio
import shutil
from pathlib import Path

from models.registry import Registry
from streams.modelwatch import MODEL_SWAP_FAILURES, ModelFollower
from streams.schemas import ModelAnnouncement


def _copy_of_packaged(root: Path, kind: str) -> str:
    """A second version of ``kind`` in ``root``: the packaged artifacts under a new name."""
    registry = Registry(root)
    packaged = registry.current(kind)
    staging = root.parent / f"staging-{kind}"
    shutil.copytree(packaged.path, staging)
    (staging / "meta.json").unlink()
    meta = {k: packaged.meta[k] for k in ("params", "summary", "data_fingerprint")}
    meta["artifact_files"] = {r: e["file"] for r, e in packaged.meta["artifacts"].items()}
    return registry.add(kind, staging, meta).name


def _announce(kind: str, version: str) -> bytes:
    return (
        ModelAnnouncement(kind=kind, version=version, path="-", metrics={})
        .model_dump_json()
        .encode()
    )


def test_announcements_swap_models_and_bad_ones_change_nothing(tmp_path):
    root = tmp_path / "reg"
    new = _copy_of_packaged(root, "forecaster")
    in_use = {"classifier": "c-old", "forecaster": "f-old"}
    loaded: list[tuple[str, str]] = []

    def on_load(kind: str, model) -> None:
        in_use[kind] = model.version
        loaded.append((kind, model.version))

    follower = ModelFollower("unused:9092", "p.models", root, in_use.get, on_load)
    failures = MODEL_SWAP_FAILURES.labels(kind="forecaster")._value.get()
    for value in [
        b"not json",
        b'{"kind": "forecaster", "version": "/etc/passwd", "path": "-", "metrics": {}}',
        _announce("forecaster", "20991231T000000Z-00000000"),  # well formed, not in the registry
        None,
    ]:
        asyncio.run(follower.apply(value))
    assert loaded == []
    assert MODEL_SWAP_FAILURES.labels(kind="forecaster")._value.get() == failures + 1
    asyncio.run(follower.apply(_announce("forecaster", new)))
    asyncio.run(follower.apply(_announce("forecaster", new)))  # the same again: nothing to do
    assert loaded == [("forecaster", new)]


def test_a_forecaster_without_a_configured_horizon_is_refused_and_the_old_one_stays(tmp_path):
    from streams.forecasting import select_horizons

    root = tmp_path / "reg"
    new = _copy_of_packaged(root, "forecaster")
    in_use = {"classifier": None, "forecaster": "f-old"}

    def on_load(kind: str, model) -> None:  # as the worker does, with 30 s asked for
        in_use[kind] = select_horizons(model, (1.0, 30.0), 1.0).version

    follower = ModelFollower("unused:9092", "p.models", root, in_use.get, on_load)
    failures = MODEL_SWAP_FAILURES.labels(kind="forecaster")._value.get()
    asyncio.run(follower.apply(_announce("forecaster", new)))
    assert in_use["forecaster"] == "f-old"
    assert MODEL_SWAP_FAILURES.labels(kind="forecaster")._value.get() == failures + 1

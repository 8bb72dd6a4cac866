"""Train a model, judge it, write its report and add it to the registry as a new version.

The data arrives already gathered (``producers.datasets`` reads files and runs
simulations); this module only learns, measures and records. A forecaster is
promoted to current only if it beats the best baseline on held-out data. A
classifier has no baseline to beat; it is promoted unless ``promote=False``
(its cross-validated figures are in its report, beside the current version's
for the record: those came from other data and folds, so they are not a
gate).
"""

import hashlib
import json
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from models.classifier import ClassifierParams, LabelledData, compare, confusion_png, tree_arrays
from models.exceptions import RegistryError
from models.registry import Registry, Version
from models.series import Series

Log = Callable[[str], None]


def fingerprint(parts: Iterable[str]) -> str:
    """sha256 over the description of every input (file names with their sha256, runs' seeds)."""
    digest = hashlib.sha256()
    for part in sorted(parts):
        digest.update(part.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def train_classifier(
    data: LabelledData,
    params: ClassifierParams,
    registry: Registry,
    data_parts: list[str],
    *,
    promote: bool = True,
    log: Log = print,
    benign: LabelledData | None = None,
) -> tuple[Version, dict[str, Any]]:
    """Judge the candidates, record the tree, promote it unless told not to.

    ``benign`` rows (the flow datasets' benign flows: no class, never trained
    on) measure false alarms: the share the tree calls attack.
    """
    import skops.io

    tree, report = compare(data, params, log)
    if benign is not None and len(benign):
        report["benign"] = false_alarms(tree, benign)
        for source, figures in report["benign"].items():
            log(
                f"benign {source} flows the tree calls attack: {figures['flagged_attack']:.1%} "
                f"of {figures['rows']}"
            )
    folder = _new_folder(registry, "classifier")
    skops.io.dump(tree, folder / "model.skops")
    _save_arrays(folder / "tree.npz", tree_arrays(tree))
    confusion_png(
        report["models"]["decision_tree"],
        "decision tree, out-of-fold (held-out files)",
        str(folder / "confusion.png"),
    )
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    result = report["models"]["decision_tree"]
    summary = {
        "macro_f1": result["macro_f1"],
        "accuracy": result["accuracy"],
        "fold_macro_f1_std": result["fold_macro_f1_std"],
        "rows": float(report["rows"]["used"]),
    }
    version = registry.add(
        "classifier",
        folder,
        {
            "artifact_files": {
                "model": "model.skops",
                "tree": "tree.npz",
                "report": "report.json",
                "confusion": "confusion.png",
            },
            "estimator": "sklearn.tree.DecisionTreeClassifier",
            "params": params.as_dict(),
            "data_fingerprint": fingerprint(data_parts),
            "data": sorted(data_parts),
            "summary": summary,
        },
    )
    previous = _current_summary(registry)
    report["promotion"] = {"promoted": promote, "previous": previous}
    if promote:
        registry.promote("classifier", version.name)
    was = (
        (
            f"; the previous {previous['version']} had {previous['macro_f1']:.3f} on its own "
            "data and folds (not comparable)"
        )
        if previous
        else ""
    )
    log(
        f"classifier {version.name}: macro-F1 {summary['macro_f1']:.3f}"
        f"{', promoted' if promote else ', recorded, not promoted'}{was}"
    )
    return version, report


def false_alarms(tree: Any, benign: LabelledData) -> dict[str, dict[str, float]]:
    """Per source, how many benign flows the tree classifies as attack."""
    predicted = tree.predict(benign.x)
    return {
        source: {
            "rows": int(np.sum(benign.sources == source)),
            "flagged_attack": float(np.mean(predicted[benign.sources == source] == "attack")),
        }
        for source in sorted(set(benign.sources.tolist()))
    }


def _current_summary(registry: Registry) -> dict[str, Any] | None:
    """The current classifier's name and figure, for the record; None if there is none."""
    try:
        current = registry.current("classifier")
    except RegistryError:
        return None
    return {
        "version": current.name,
        "macro_f1": float(current.meta.get("summary", {}).get("macro_f1", 0.0)),
    }


def train_forecaster(
    many: list[Series],
    params: Any,
    registry: Registry,
    data_parts: list[str],
    *,
    promote: bool = True,
    stride: int = 1,
    log: Log = print,
) -> tuple[Version, dict[str, Any]]:
    from models import forecaster
    from models.evaluation import evaluate
    from models.features import series_targets
    from models.series import windows

    t, horizons = params.window_bins, params.horizons
    train_w = windows(many, t, horizons, "train", stride)
    val_w = windows(many, t, horizons, "validation", stride)
    log(
        f"forecaster: {len(train_w)} training and {len(val_w)} validation windows "
        f"from {len(many)} series"
    )
    model, history = forecaster.train(
        params,
        train_w,
        series_targets(train_w.actual, train_w.level),
        val_w,
        series_targets(val_w.actual, val_w.level),
    )
    weights = forecaster.export_weights(model)
    from models.inference import NumpyForecaster

    report = evaluate(NumpyForecaster(weights), many, t, horizons, "test")
    report["history"] = history
    report["data"] = {s.source: 0 for s in many}
    for s in many:
        report["data"][s.source] += 1
    folder = _new_folder(registry, "forecaster")
    model.save(folder / "model.keras")
    _save_arrays(folder / "weights.npz", weights)
    for batch in forecaster.TFLITE_BATCHES:
        (folder / f"model-b{batch}.tflite").write_bytes(forecaster.export_tflite(model, t, batch))
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    gate = report["gate"]
    summary = {
        "wape": report["score"]["model"],
        "best_baseline_wape": report["score"]["baselines"][gate["best_baseline"]],
        "margin_pct": gate["margin_pct"],
        "coverage": gate["coverage_mean"],
    }
    version = registry.add(
        "forecaster",
        folder,
        {
            "artifact_files": {
                "model": "model.keras",
                "weights": "weights.npz",
                "report": "report.json",
                **{f"tflite_b{b}": f"model-b{b}.tflite" for b in forecaster.TFLITE_BATCHES},
            },
            "params": params.as_dict(),
            "data_fingerprint": fingerprint(data_parts),
            "data": sorted(data_parts),
            "summary": summary,
            "gate": gate,
        },
    )
    verdict = (
        f"beats {gate['best_baseline']} by {gate['margin_pct']:.1f} %"
        if gate["passed"]
        else f"does not beat {gate['best_baseline']} ({gate['margin_pct']:.1f} %)"
    )
    if promote and gate["passed"]:
        registry.promote("forecaster", version.name)
        verdict += "; promoted"
    else:
        verdict += "; not promoted"
    report["promotion"] = verdict
    log(f"forecaster {version.name}: WAPE {summary['wape']:.2f} %, {verdict}")
    return version, report


def _save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Plain arrays in an .npz: read back with allow_pickle=False, nothing executable inside."""
    np.savez(path, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool


def _staging(registry: Registry) -> Path:
    staging = registry.root / ".staging"
    staging.mkdir(parents=True, exist_ok=True)
    return staging


def _new_folder(registry: Registry, kind: str) -> Path:
    """A fresh folder for a version's artifacts, readable by the service's own user."""
    folder = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=_staging(registry)))
    folder.chmod(0o755)
    return folder

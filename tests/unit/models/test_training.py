"""Training end to end on small data: versions land in the registry, judged and loadable."""

import json

import numpy as np

from models.classifier import ClassifierParams, LabelledData
from models.exceptions import RegistryError
from models.features import flow_matrix
from models.registry import Registry
from models.runtime import load_classifier, load_forecaster, load_sklearn
from models.series import Series
from models.training import train_classifier, train_forecaster
from producers.datasets import simulated_flows


def test_classifier_training_records_a_judged_loadable_version(tmp_path):
    flows = list(simulated_flows(runs=4, duration_s=20.0, seed=3))
    data = LabelledData(
        flow_matrix([f.record for f in flows]),
        np.array([str(f.record.label) for f in flows]),
        np.array([f.group for f in flows]),
        np.array([f.source for f in flows]),
    )
    registry = Registry(tmp_path / "reg", fallback=None)
    version, report = train_classifier(
        data, ClassifierParams(), registry, ["sim"], log=lambda _: None
    )
    assert registry.current("classifier").name == version.name
    assert set(report["models"]) == {"decision_tree", "random_forest", "hist_gradient_boosting"}
    held_out = [set(files) for files in report["folds"]]
    assert set.union(*held_out) == {f.group for f in flows}  # every run held out once
    assert sum(len(s) for s in held_out) == 4  # and only once
    assert (version.path / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    loaded = load_classifier(version)
    x = data.x[:200]
    estimator = load_sklearn(version)
    proba = estimator.predict_proba(x)
    best = np.array(estimator.classes_)[proba.argmax(axis=1)]
    assert [c for c, _ in loaded.classify([f.record for f in flows[:200]])] == best.tolist()
    meta = json.loads((version.path / "meta.json").read_text())
    assert {
        "artifacts",
        "feature_schema",
        "data_fingerprint",
        "libraries",
        "params",
        "created_at",
        "summary",
    } <= set(meta)


def test_forecaster_is_promoted_only_if_it_beats_the_best_baseline(tmp_path):
    from models.forecaster import ForecasterParams

    rng = np.random.default_rng(0)
    t = np.arange(600)
    many = [
        Series(
            f"wave-{k}",
            "synthetic",
            1.0,
            t.astype(float),
            1e6 * (2 + np.sin(2 * np.pi * t / 40 + k)) + rng.normal(0, 5e4, len(t)),
        )
        for k in range(3)
    ]
    registry = Registry(tmp_path / "reg", fallback=None)
    params = ForecasterParams(window_bins=20, horizons=(1, 5), units=8, dense_units=8, epochs=2)
    version, report = train_forecaster(many, params, registry, ["waves"], log=lambda _: None)
    entry = report["sources"]["synthetic"]
    assert set(entry["baselines"]) == {"last_value", "moving_average", "ewma"}
    assert len(entry["model"]["wape"]) == len(entry["model"]["coverage"]) == 2
    recorded = [v.name for v in registry.versions("forecaster")]
    assert recorded == [version.name]
    try:
        current = registry.current("forecaster").name
    except RegistryError:
        current = None
    assert (current == version.name) == report["gate"]["passed"]
    model = load_forecaster(version)
    out = model.forecast(np.full((2, 20), 1e6), np.zeros((2, 20)), 1.0)
    assert out.shape == (2, 2, 3)

"""`linkcast evaluate`, `linkcast models` and `linkcast bench inference` on real data."""

import json
import shutil
from pathlib import Path

import numpy as np

from tests.helpers import run_linkcast


def _last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_evaluate_classifier_says_which_captures_it_trained_on(shared_data: Path, tmp_path: Path):
    folder = tmp_path / "captures"
    folder.mkdir()
    for name in ("bittorrent.pcap", "zoom.pcap"):  # read where they lie; only links made here
        for suffix in ("", ".out"):
            (folder / f"{name}{suffix}").symlink_to(
                shared_data / "pcap" / "ndpi" / f"{name}{suffix}"
            )
    result = run_linkcast(
        ["evaluate", "classifier", "--data", str(folder), "--registry", str(tmp_path / "reg")], {}
    )
    assert result.returncode == 0, result.stderr
    report = _last_json(result.stdout)
    assert report["files"] == 2
    assert report["rows"] > 0
    assert len(report["seen_in_training"]) == 2  # the shipped tree learned from both
    assert "are not a test of unseen data" in result.stderr
    assert 0.0 <= report["macro_f1"] <= 1.0
    assert "macro-F1" in result.stdout


def test_evaluate_forecaster_on_a_series_it_never_saw_beside_the_baselines(tmp_path):
    # two weeks of 5-minute bins with a daily cycle and noise: new to the model
    rng = np.random.default_rng(8)
    t = np.arange(14 * 288) * 300.0
    mbps = 50 + 20 * np.sin(2 * np.pi * t / 86_400) + rng.normal(0, 3, len(t))
    series = tmp_path / "daily.csv"
    series.write_text(
        "ts,link_mbps\n" + "".join(f"{a:.0f},{b:.3f}\n" for a, b in zip(t, mbps, strict=True))
    )
    result = run_linkcast(
        ["evaluate", "forecaster", "--data", str(series), "--registry", str(tmp_path / "reg")], {}
    )
    assert result.returncode == 0, result.stderr
    report = _last_json(result.stdout)
    [entry] = report["sources"].values()
    assert entry["windows"] > 1000
    assert {"last_value", "moving_average", "ewma", "seasonal_naive"} <= set(entry["baselines"])
    assert len(entry["model"]["mae"]) == len(report["horizons_bins"])
    assert report["seen_in_training"] == []


def test_evaluate_refuses_a_file_that_is_not_a_series(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("when,value\n1,2\n")
    result = run_linkcast(["evaluate", "forecaster", "--data", str(bad)], {})
    assert result.returncode == 1
    assert "fewer than two data rows" in result.stderr or "no time column" in result.stderr


def test_models_list_promote_rollback(tmp_path):
    from models.registry import Registry

    registry = Registry(tmp_path / "reg")
    packaged = registry.current("classifier")
    staging = tmp_path / "staging"
    shutil.copytree(packaged.path, staging)
    (staging / "meta.json").unlink()
    meta = {k: packaged.meta[k] for k in ("params", "summary", "data_fingerprint")}
    meta["artifact_files"] = {r: e["file"] for r, e in packaged.meta["artifacts"].items()}
    new = registry.add("classifier", staging, meta)
    reg = ["--registry", str(tmp_path / "reg")]
    listed = run_linkcast(["models", "list", *reg], {})
    assert f"classifier: current {packaged.name}" in listed.stdout
    assert new.name in listed.stdout
    promoted = run_linkcast(
        ["models", "promote", "classifier", new.name, "--no-announce", *reg], {}
    )
    assert promoted.returncode == 0, promoted.stderr
    assert registry.current("classifier").name == new.name
    shown = run_linkcast(["models", "show", "classifier", *reg], {})
    assert json.loads(shown.stdout)["version"] == new.name
    back = run_linkcast(["models", "rollback", "classifier", "--no-announce", *reg], {})
    assert back.returncode == 0, back.stderr
    assert registry.current("classifier").name == packaged.name  # the packaged one again
    missing = run_linkcast(["models", "promote", "classifier", "nope", "--no-announce", *reg], {})
    assert missing.returncode == 1
    assert "'nope' is not a model version name" in missing.stderr
    absent = run_linkcast(["models", "show", "classifier", "20991231T000000Z-00000000", *reg], {})
    assert "no classifier version '20991231T000000Z-00000000'" in absent.stderr


def test_bench_inference_prints_figures_and_json(tmp_path):
    out = tmp_path / "inference.json"
    result = run_linkcast(
        ["bench", "inference", "--links", "64", "--repeat", "2", "--out", str(out)], {}
    )
    assert result.returncode == 0, result.stderr
    report = _last_json(result.stdout)
    assert report == json.loads(out.read_text())
    assert report["bench"] == "inference"
    assert report["baseline"] > 0
    assert report["value"] > 0
    row = report["forecaster"]["64"]
    assert row["tflite_litert"]["exact"]
    assert row["numpy"]["exact"]
    assert report["classifier"]["1"]["tree_arrays"]["same_class"]

"""The current models, loaded for serving: what the stream and the API call.

Both load after the registry has verified their sha256 and feature schema:
the tree from plain arrays (``.npz`` with ``allow_pickle=False``), the
forecaster from TFLite flatbuffers run by LiteRT (or its ``.npz`` weights in
numpy). Neither imports TensorFlow or unpickles anything.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.features import feature_matrix, series_inputs, to_bps
from models.inference import LiteForecaster, NumpyForecaster, TreeClassifier
from models.registry import Registry, Version

#: The only non-default type a linkcast classifier's skops file may hold.
SKOPS_TRUSTED = ["sklearn.tree._tree.Tree"]


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


@dataclass(frozen=True)
class Classifier:
    """The current classifier: (class, confidence) for flow records."""

    version: str
    tree: TreeClassifier
    metrics: dict[str, float] = field(default_factory=dict)

    def classify(self, records: Sequence[Any]) -> list[tuple[str, float]]:
        return self.tree.classify(records)

    def classify_inputs(self, inputs: Mapping[str, np.ndarray]) -> list[tuple[str, float]]:
        """The same for flows given as ``FLOW_INPUTS`` columns (``models.features``)."""
        return self.tree.classify_features(feature_matrix(inputs))


@dataclass(frozen=True)
class Forecaster:
    """The current forecaster: multi-horizon bandwidth with an 80 % interval."""

    version: str
    engine: "NumpyForecaster | LiteForecaster"
    window_bins: int
    horizons: tuple[int, ...]  # in bins
    metrics: dict[str, float] = field(default_factory=dict)

    def forecast(
        self,
        bps: np.ndarray,
        bin_start_s: np.ndarray,
        bin_s: float,
        **counts: np.ndarray | None,
    ) -> np.ndarray:
        """Bits per second (n, H, 3: lower, median, upper) for n windows of ``window_bins`` bins.

        One call for all the windows given: the stream batches every link
        whose bin closed in the same tick. ``counts`` are ``series_inputs``'
        optional packets, flows and class_bytes.
        """
        x, level = series_inputs(bps, bin_start_s, bin_s, **counts)
        return to_bps(self.engine(x), level)


def load_classifier(version: Version) -> Classifier:
    version.check_schema()
    a = _arrays(version.artifact("tree"))
    tree = TreeClassifier(a["left"], a["right"], a["feature"], a["threshold"], a["proba"])
    return Classifier(version.name, tree, _summary(version))


def load_forecaster(version: Version, engine: str = "tflite") -> Forecaster:
    """The version's forecaster, run by TFLite (the fastest, see ``linkcast bench inference``).

    ``engine="numpy"``, or a version without TFLite models, runs the numpy
    forward pass instead: the same numbers, slower.
    """
    version.check_schema()
    params = version.meta["params"]
    tflite = {int(role.removeprefix("tflite_b")): role for role in version.meta["artifacts"]
              if role.startswith("tflite_b")}  # fmt: skip
    runner: NumpyForecaster | LiteForecaster
    if engine == "tflite" and tflite:
        runner = LiteForecaster({b: version.artifact(role) for b, role in tflite.items()})
    else:
        runner = NumpyForecaster(_arrays(version.artifact("weights")))
    return Forecaster(
        version.name,
        runner,
        int(params["window_bins"]),
        tuple(int(h) for h in params["horizons"]),
        _summary(version),
    )


def load_sklearn(version: Version) -> Any:
    """The classifier's scikit-learn estimator (reports and comparisons, not the hot path)."""
    import skops.io

    return skops.io.load(version.artifact("model"), trusted=SKOPS_TRUSTED)


def current_models(registry: Registry) -> tuple[Classifier, Forecaster]:
    return (
        load_classifier(registry.current("classifier")),
        load_forecaster(registry.current("forecaster")),
    )


def _summary(version: Version) -> dict[str, float]:
    return {k: float(v) for k, v in version.meta.get("summary", {}).items()}

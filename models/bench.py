"""`linkcast bench inference`: model latency per engine, for 1 and for N links in one call.

Classifier: scikit-learn's ``predict_proba`` (the baseline) against the tree
as flat arrays (``inference.TreeClassifier``: a Python walk for one flow,
numpy for many), on prepared features.
Forecaster: Keras ``model.predict()`` (the baseline) against a direct
``model(x)`` call, a ``tf.function`` with a fixed input signature, the numpy
forward pass (``inference.NumpyForecaster``) and the version's TFLite models in
the LiteRT interpreter (``inference.LiteForecaster``, what the stream and the
API serve with). Every engine's outputs are compared with the direct call;
one that differs by more than ``FORECAST_TOLERANCE`` is reported as such and
not counted as a winner.

Each figure is the median of ``--repeat`` timed calls after one warm-up call.
The ratio is the baseline's time over the fastest exact engine's: above 1,
the engine linkcast serves with is faster.
"""

import argparse
import functools
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from models.classes import CLASSES
from models.features import FLOW_FEATURES, SERIES_CHANNELS
from models.inference import FORECAST_TOLERANCE, TreeClassifier

CLASSIFIER_TOLERANCE = 1e-12  # probabilities; only the normalisation's rounding differs


def register(benches: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = benches.add_parser(
        "inference",
        help="latency of the classifier and forecaster engines, 1 link and many",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--links", type=int, default=10_000, help="links in the batched call")
    p.add_argument("--repeat", type=int, default=7, help="timed calls per figure")
    p.add_argument("--registry", type=Path, help="registry folder (LINKCAST_MODELS_DIR)")
    p.set_defaults(func=run)


def _median_s(call: Callable[[], Any], repeat: int) -> float:
    call()  # warm-up: traces, allocations
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forecaster_figures(
    model: Any, version: Any, window_bins: int, sizes: list[int], repeat: int
) -> dict[str, Any]:
    import tensorflow as tf

    figures: dict[str, Any] = {}
    from models.runtime import load_forecaster

    numpy_engine = load_forecaster(version, engine="numpy").engine
    tflite_engine = load_forecaster(version, engine="tflite").engine
    for n in sizes:
        x = np.random.default_rng(n).normal(size=(n, window_bins, len(SERIES_CHANNELS)))
        x = x.astype(np.float32)
        reference = np.asarray(model(x, training=False))
        fixed = tf.function(
            lambda v: model(v, training=False),
            reduce_retracing=True,
            input_signature=[tf.TensorSpec((None, window_bins, len(SERIES_CHANNELS)), tf.float32)],
        )

        def keras_predict(v: np.ndarray) -> np.ndarray:
            return np.asarray(model.predict(v, verbose=0, batch_size=max(32, len(v))))

        def direct_call(v: np.ndarray) -> np.ndarray:
            return np.asarray(model(v, training=False))

        def tf_function(v: np.ndarray, f: Any = fixed) -> np.ndarray:
            return np.asarray(f(tf.constant(v)))

        engines: dict[str, Callable[[np.ndarray], np.ndarray]] = {
            "keras_predict": keras_predict,
            "direct_call": direct_call,
            "tf_function": tf_function,
            "numpy": numpy_engine,
            "tflite_litert": tflite_engine,
        }
        row = {}
        for name, engine in engines.items():
            diff = float(np.max(np.abs(engine(x) - reference)))
            row[name] = {
                "ms": 1e3 * _median_s(functools.partial(engine, x), repeat),
                "max_abs_diff": diff,
                "exact": diff <= FORECAST_TOLERANCE,
            }
        figures[str(n)] = row
    return figures


def classifier_figures(estimator: Any, sizes: list[int], repeat: int) -> dict[str, Any]:
    runner = TreeClassifier.from_sklearn(estimator)
    figures: dict[str, Any] = {}
    for n in sizes:
        x = np.random.default_rng(n).normal(2, 3, size=(n, len(FLOW_FEATURES))).astype(np.float32)
        reference = estimator.predict_proba(x)
        known = list(estimator.classes_)
        order = [known.index(c) if c in known else None for c in CLASSES]
        mapped = np.stack(
            [reference[:, i] if i is not None else np.zeros(n) for i in order], axis=1
        )
        one = x[0].tolist()
        engines: dict[str, Callable[[], Any]] = {
            "sklearn_predict_proba": functools.partial(estimator.predict_proba, x),
            "tree_arrays": functools.partial(runner.proba_one, one)
            if n == 1
            else functools.partial(runner.proba, x),
        }
        ours = runner.proba(x)
        diff = float(np.max(np.abs(ours - mapped)))
        same_class = bool(np.array_equal(ours.argmax(axis=1), mapped.argmax(axis=1)))
        figures[str(n)] = {
            name: {"ms": 1e3 * _median_s(call, repeat)} for name, call in engines.items()
        }
        figures[str(n)]["tree_arrays"] |= {
            "max_abs_diff": diff,
            "same_class": same_class,
            "exact": same_class and diff <= CLASSIFIER_TOLERANCE,
        }
    return figures


def _fastest_exact(row: dict[str, Any]) -> str:
    exact = {name: figures["ms"] for name, figures in row.items() if figures.get("exact")}
    return min(exact, key=exact.__getitem__)


def run(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Run the bench; return its result line, its full record and its result file's name."""
    from models import forecaster
    from models.registry import Registry
    from models.runtime import load_sklearn
    from streams.settings import KafkaSettings

    registry = Registry(args.registry or KafkaSettings().models_dir)
    classifier_v, forecaster_v = registry.current("classifier"), registry.current("forecaster")
    sizes = [1, args.links]
    cls = classifier_figures(load_sklearn(classifier_v), sizes, args.repeat)
    keras_model = forecaster.load(str(forecaster_v.artifact("model")))
    fc = forecaster_figures(
        keras_model,
        forecaster_v,
        int(forecaster_v.meta["params"]["window_bins"]),
        sizes,
        args.repeat,
    )
    for title, figures in (("classifier", cls), ("forecaster", fc)):
        for n in map(str, sizes):
            cells = ", ".join(
                f"{k} {v['ms']:.3f} ms" + ("" if v.get("exact", True) else " (differs)")
                for k, v in figures[n].items()
            )
            print(f"{title}, {n} link(s): {cells}")
    big = fc[str(args.links)]
    best = _fastest_exact({k: v for k, v in big.items() if k != "keras_predict"})
    result = {
        "bench": "inference",
        "value": big[best]["ms"],
        "unit": f"ms per forecast call for {args.links} links ({best})",
        "baseline": big["keras_predict"]["ms"],
        "ratio": big["keras_predict"]["ms"] / big[best]["ms"],
        "fastest_exact_engine": {n: _fastest_exact(fc[n]) for n in map(str, sizes)},
        "classifier": cls,
        "forecaster": fc,
        "tolerance": FORECAST_TOLERANCE,
        "models": {"classifier": classifier_v.name, "forecaster": forecaster_v.name},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    return result, result, "inference.json"

"""Fast inference: the decision tree as flat arrays, the LSTM in TFLite (numpy as the reference).

None needs scikit-learn's or Keras' per-call machinery on the hot path
(``model.predict()`` builds a dataset and a loop for every call), and serving
needs no TensorFlow: TFLite models run in the LiteRT interpreter
(``ai-edge-litert``). All give the same numbers as the library they come from:
the tree's classes exactly and its probabilities to 1e-12 (it compares the
same float32 features with the same thresholds; only the normalisation's
rounding differs), the LSTM to within float32 rounding
(``FORECAST_TOLERANCE``). ``linkcast bench inference`` measures the engines
side by side and checks those tolerances.
"""

import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.classes import CLASSES
from models.features import flow_matrix

#: Largest absolute difference allowed between an engine's outputs and the Keras model's,
#: in log1p(bps) units (1e-4 is a relative difference of 0.01 % in bits per second).
FORECAST_TOLERANCE = 1e-4


class TreeClassifier:
    """A fitted decision tree as arrays; ``proba`` columns follow ``CLASSES``."""

    def __init__(
        self,
        left: np.ndarray,
        right: np.ndarray,
        feature: np.ndarray,
        threshold: np.ndarray,
        proba: np.ndarray,
    ) -> None:
        self.left = left.astype(np.int64)
        self.right = right.astype(np.int64)
        self.feature = feature.astype(np.int64)
        self.threshold = threshold.astype(np.float64)
        self.node_proba = proba.astype(np.float64)
        self.depth = _depth(self.left, self.right)
        # Plain lists for the one-record path, where numpy's per-call cost dominates.
        self._l, self._r = self.left.tolist(), self.right.tolist()
        self._f, self._t = self.feature.tolist(), self.threshold.tolist()

    @classmethod
    def from_sklearn(cls, tree: Any) -> "TreeClassifier":
        """From a fitted ``DecisionTreeClassifier`` whose classes are names in CLASSES."""
        t = tree.tree_
        value = t.value[:, 0, :]
        totals = value.sum(axis=1, keepdims=True)
        fractions = np.divide(value, totals, out=np.zeros_like(value), where=totals > 0)
        proba = np.zeros((t.node_count, len(CLASSES)))
        for column, name in enumerate(tree.classes_):
            proba[:, CLASSES.index(str(name))] = fractions[:, column]
        return cls(t.children_left, t.children_right, t.feature, t.threshold, proba)

    def proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities for features (n, F) float32 -> (n, len(CLASSES))."""
        node = np.zeros(len(x), dtype=np.int64)
        rows = np.arange(len(x))
        for _ in range(self.depth):
            left = self.left[node]
            inner = left >= 0
            if not inner.any():
                break
            goes_left = x[rows, np.maximum(self.feature[node], 0)] <= self.threshold[node]
            node = np.where(inner, np.where(goes_left, left, self.right[node]), node)
        return self.node_proba[node]

    def proba_one(self, features: Sequence[float]) -> np.ndarray:
        """The same for one flow's features (as float32, like the batch path)."""
        x = np.asarray(features, dtype=np.float32).tolist()
        node = 0
        left, right, feature, threshold = self._l, self._r, self._f, self._t
        while left[node] >= 0:
            node = left[node] if x[feature[node]] <= threshold[node] else right[node]
        return self.node_proba[node]

    def classify(self, records: Sequence[Any]) -> list[tuple[str, float]]:
        """(class, confidence) of each flow record."""
        return self.classify_features(flow_matrix(records))

    def classify_features(self, x: np.ndarray) -> list[tuple[str, float]]:
        """(class, confidence) of each row of flow features (n, F) float32."""
        if len(x) == 1:
            return [_pick(self.proba_one(x[0]))]
        proba = self.proba(x)
        # _pick for every row at once: the first class by name among a row's most probable
        best = _NAME_ORDER[np.argmax(proba[:, _NAME_ORDER], axis=1)]
        confidence = proba[np.arange(len(proba)), best]
        return [(CLASSES[b], c) for b, c in zip(best.tolist(), confidence.tolist(), strict=True)]


#: CLASSES in alphabetical order: scikit-learn's ``classes_`` order, which breaks its ties.
_BY_NAME = sorted(range(len(CLASSES)), key=lambda i: CLASSES[i])
_NAME_ORDER = np.asarray(_BY_NAME)


def best_class(proba: np.ndarray) -> str:
    """The most probable class; a tie goes to the first by name, as scikit-learn's does."""
    return _pick(proba)[0]


def _pick(proba: np.ndarray) -> tuple[str, float]:
    """(best class, its probability), the maximum found once (the worker's per-flow path)."""
    top = float(proba.max())
    return CLASSES[next(i for i in _BY_NAME if proba[i] == top)], top


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    depth, frontier = 0, [0]
    while frontier:
        frontier = [c for n in frontier for c in (left[n], right[n]) if c >= 0]
        depth += 1
    return depth


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class NumpyForecaster:
    """The LSTM forecaster's forward pass over exported weights (``forecaster.export_weights``)."""

    def __init__(self, weights: Mapping[str, np.ndarray]) -> None:
        w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        self.kernel, self.recurrent, self.bias = (
            w["lstm_kernel"],
            w["lstm_recurrent"],
            w["lstm_bias"],
        )
        self.dense_w, self.dense_b = w["dense_w"], w["dense_b"]
        self.raw_w, self.raw_b = w["raw_w"], w["raw_b"]
        self.units = self.recurrent.shape[0]
        self.horizons = self.raw_w.shape[1] // 3

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(n, T, channels) float32 -> (n, H, 3) quantile outputs, as the Keras model gives."""
        n, steps, _ = x.shape
        u = self.units
        projected = x.astype(np.float32) @ self.kernel + self.bias  # every step at once
        h = np.zeros((n, u), dtype=np.float32)
        c = np.zeros((n, u), dtype=np.float32)
        for t in range(steps):
            z = projected[:, t, :] + h @ self.recurrent
            i = _sigmoid(z[:, :u])
            f = _sigmoid(z[:, u : 2 * u])
            g = np.tanh(z[:, 2 * u : 3 * u])
            o = _sigmoid(z[:, 3 * u :])
            c = f * c + i * g
            h = o * np.tanh(c)
        hidden = np.maximum(h @ self.dense_w + self.dense_b, 0.0)
        raw = hidden @ self.raw_w + self.raw_b
        k = self.horizons
        median = raw[:, :k]
        below = np.logaddexp(0.0, raw[:, k : 2 * k])
        above = np.logaddexp(0.0, raw[:, 2 * k :])
        return np.stack([median - below, median, median + above], axis=-1)


def usable_cpus(cgroup: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The CPUs this process can use: those it may run on (``taskset``, a pinned
    benchmark), fewer where a cgroup quota (a container's CPU limit) allows fewer.

    ``os.cpu_count()`` counts the machine's. An interpreter with more threads than
    that runs slower, not faster: two LiteRT threads on one pinned core took 50 µs
    per forecast window, one thread 24 µs (2,500 windows, the packaged model).
    """
    affinity = getattr(os, "sched_getaffinity", None)  # Linux only
    cpus = len(affinity(0)) if affinity is not None else os.cpu_count() or 1
    try:
        quota, period = cgroup.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota: the affinity says it all
    return cpus


class LiteForecaster:
    """The forecaster's TFLite models (one per fixed batch size) in the LiteRT interpreter."""

    def __init__(self, models: Mapping[int, Path], num_threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.batches = sorted(models)
        self._lock = threading.Lock()
        self._runs = {}
        for batch, path in models.items():
            interpreter = Interpreter(
                model_path=str(path), num_threads=num_threads or usable_cpus()
            )
            interpreter.allocate_tensors()
            self._runs[batch] = (
                interpreter,
                interpreter.get_input_details()[0]["index"],
                interpreter.get_output_details()[0]["index"],
            )
        #: seconds one call of each batch size takes here, measured once
        self.call_s = self._time_calls()
        self._plans = chunk_plans(self.call_s)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(n, T, channels) float32 -> (n, H, 3), in the chunks ``plan`` gives.

        Safe from several threads (the API's thread pool): an interpreter's
        tensors are shared, so one call runs at a time.
        """
        with self._lock:
            return self._run(np.ascontiguousarray(x, dtype=np.float32))

    def _run(self, x: np.ndarray) -> np.ndarray:
        parts = []
        start = 0
        for batch in self.plan(len(x)):
            chunk = x[start : start + batch]
            rest = len(chunk)
            if rest < batch:
                chunk = np.concatenate([chunk, np.zeros((batch - rest, *x.shape[1:]), np.float32)])
            interpreter, inp, out = self._runs[batch]
            interpreter.set_tensor(inp, chunk)
            interpreter.invoke()
            parts.append(interpreter.get_tensor(out)[:rest].copy())
            start += batch
        if not parts:
            return np.zeros((0, 0, 3), dtype=np.float32)
        return np.concatenate(parts)

    def plan(self, n: int) -> list[int]:
        """The batch sizes ``n`` windows run in: as many of the largest as they fill, the
        rest in the calls that cost least here."""
        largest = self.batches[-1]
        full, rest = divmod(n, largest)
        return [largest] * full + self._plans[rest]

    def _time_calls(self, rounds: int = 5) -> dict[int, float]:
        """The least of ``rounds`` timed calls of each model, after one to warm them up,
        the sizes taking turns (so that a busy moment slows them all, not one)."""
        zeros = {}
        for batch, (interpreter, _, _) in self._runs.items():
            zeros[batch] = np.zeros(interpreter.get_input_details()[0]["shape"], np.float32)
        best = dict.fromkeys(self._runs, math.inf)
        for k in range(rounds + 1):
            for batch, (interpreter, inp, _) in self._runs.items():
                started = time.perf_counter()
                interpreter.set_tensor(inp, zeros[batch])
                interpreter.invoke()
                if k:
                    best[batch] = min(best[batch], time.perf_counter() - started)
        return best


def chunk_plans(call_s: Mapping[int, float]) -> list[list[int]]:
    """For every n below the largest batch size, the batch sizes whose calls hold n
    windows at the least total time (``call_s``: each batch size's call, in seconds).

    The last chunk used to be padded up to the smallest batch that held it: 17
    windows ran as one call of 256 (3.5 ms), where two of 16 take 0.6 ms (the
    packaged model, one thread; ``call_s`` of a worker pinned to a core).
    """
    batches = sorted(call_s)
    best: list[tuple[float, list[int]]] = [(0.0, [])]
    for n in range(1, batches[-1]):
        best.append(
            min((call_s[b] + best[max(0, n - b)][0], [b, *best[max(0, n - b)][1]]) for b in batches)
        )
    return [plan for _, plan in best]

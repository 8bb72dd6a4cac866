"""Training and judging the traffic classifier, split by capture file, never by row.

The default model is a scikit-learn ``DecisionTreeClassifier``: small, fast and
explainable. The report compares it, on the same split, with a random forest
and histogram gradient boosting, so the price of that choice is visible.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.tree import DecisionTreeClassifier

from models.classes import CLASSES
from models.exceptions import DataError
from models.features import FLOW_FEATURES


@dataclass(frozen=True)
class ClassifierParams:
    max_depth: int = 14
    min_samples_leaf: int = 5
    test_share: float = 0.25  # of the files (groups), not of the rows: 4 folds
    per_group_class_cap: int = 500  # rows of one class from one file, so no file dominates
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LabelledData:
    """Features, labels, and the file (group) and data source of every row."""

    x: np.ndarray  # (n, F) float32
    y: np.ndarray  # (n,) class names
    groups: np.ndarray  # (n,) str
    sources: np.ndarray  # (n,) str

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: np.ndarray) -> "LabelledData":
        return LabelledData(self.x[index], self.y[index], self.groups[index], self.sources[index])


def candidates(params: ClassifierParams) -> dict[str, Callable[[], Any]]:
    """The default tree first, then the models it is compared with."""
    return {
        "decision_tree": lambda: DecisionTreeClassifier(
            max_depth=params.max_depth,
            min_samples_leaf=params.min_samples_leaf,
            class_weight="balanced",
            random_state=params.seed,
        ),
        "random_forest": lambda: RandomForestClassifier(
            n_estimators=100,
            max_depth=20,
            class_weight="balanced",
            n_jobs=-1,
            random_state=params.seed,
        ),
        "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(
            max_iter=200, class_weight="balanced", random_state=params.seed
        ),
    }


def cap_per_group(data: LabelledData, cap: int, seed: int) -> LabelledData:
    """At most ``cap`` rows of each class from each file (a SYN flood is one file, not 50,000)."""
    rng = np.random.default_rng(seed)
    keep = []
    keys = np.char.add(np.char.add(data.groups.astype(str), "\x00"), data.y.astype(str))
    for key in np.unique(keys):
        rows = np.flatnonzero(keys == key)
        keep.append(rows if len(rows) <= cap else rng.choice(rows, cap, replace=False))
    return data.take(np.sort(np.concatenate(keep)))


def folds_by_group(
    data: LabelledData, params: ClassifierParams
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, held-out rows) of each fold; every file is held out in exactly one fold."""
    folds = max(2, round(1 / params.test_share))
    if len(np.unique(data.groups)) < folds:
        raise DataError(f"a split by file needs at least {folds} files; got fewer")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=params.seed)
    return list(splitter.split(data.x, data.y, data.groups))


def class_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Per-class precision, recall, F1 and support, macro-F1 and the confusion matrix."""
    present = [c for c in CLASSES if c in set(y_true) | set(y_pred)]
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=present, zero_division=0)
    in_truth = [i for i, c in enumerate(present) if c in set(y_true)]
    return {
        "per_class": {
            c: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(s[i]),
            }
            for i, c in enumerate(present)
        },
        # macro over the classes the data has; a class absent from the truth has no recall
        "macro_f1": float(np.mean(f[in_truth])) if in_truth else 0.0,
        "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else 0.0,
        "labels": present,
        "confusion": confusion_matrix(y_true, y_pred, labels=present).tolist(),
        "rows": len(y_true),
    }


def compare(
    data: LabelledData, params: ClassifierParams, log: Callable[[str], None] = print
) -> tuple[Any, dict[str, Any]]:
    """Judge every candidate by cross-validation over files, then fit the tree on all of them.

    Each fold trains on the other folds' files and predicts its own, so every
    row is predicted by a model that never saw its capture (out-of-fold). The
    report pools those predictions per model (per-class figures, confusion
    matrix) and gives each fold's macro-F1, whose spread shows how much the
    figure depends on which captures are held out. The returned tree is
    trained on every file, as the cross-validation judged the procedure.
    """
    capped = cap_per_group(data, params.per_group_class_cap, params.seed)
    folds = folds_by_group(capped, params)
    report: dict[str, Any] = {
        "rows": {"all": len(data), "used": len(capped)},
        "files": len(set(capped.groups.tolist())),
        "folds": [sorted(set(capped.groups[test].tolist())) for _, test in folds],
        "class_rows": {c: int(np.sum(capped.y == c)) for c in CLASSES},
        "source_rows": {
            s: int(np.sum(capped.sources == s)) for s in sorted(set(capped.sources.tolist()))
        },
        "models": {},
    }
    for name, make in candidates(params).items():
        predicted = np.empty(len(capped), dtype=object)
        fold_f1 = []
        importances = np.zeros(len(FLOW_FEATURES))
        for k, (train, test) in enumerate(folds):
            model = make().fit(capped.x[train], capped.y[train])
            predicted[test] = model.predict(capped.x[test])
            fold_f1.append(class_metrics(capped.y[test], predicted[test].astype(str))["macro_f1"])
            importances += getattr(model, "feature_importances_", np.zeros(len(FLOW_FEATURES)))
            log(f"  {name} fold {k + 1}/{len(folds)}: macro-F1 {fold_f1[-1]:.3f}")
        predicted = predicted.astype(str)
        result = class_metrics(capped.y, predicted)
        result["fold_macro_f1"] = fold_f1
        result["fold_macro_f1_mean"] = float(np.mean(fold_f1))
        result["fold_macro_f1_std"] = float(np.std(fold_f1))
        result["by_source_macro_f1"] = {
            source: class_metrics(
                capped.y[capped.sources == source], predicted[capped.sources == source]
            )["macro_f1"]
            for source in sorted(set(capped.sources.tolist()))
        }
        result["feature_importances"] = dict(
            sorted(
                zip(FLOW_FEATURES, (importances / len(folds)).tolist(), strict=True),
                key=lambda kv: -kv[1],
            )
        )
        report["models"][name] = result
        log(
            f"{name}: out-of-fold macro-F1 {result['macro_f1']:.3f} "
            f"(folds {result['fold_macro_f1_mean']:.3f} +- {result['fold_macro_f1_std']:.3f})"
        )
    tree = candidates(params)["decision_tree"]().fit(capped.x, capped.y)
    report["models"]["decision_tree"] |= {
        "depth": int(tree.get_depth()),
        "leaves": int(tree.get_n_leaves()),
    }
    return tree, report


def tree_arrays(tree: Any) -> dict[str, np.ndarray]:
    """The fitted tree as the arrays ``inference.TreeClassifier`` runs (saved as .npz)."""
    from models.inference import TreeClassifier

    runner = TreeClassifier.from_sklearn(tree)
    return {
        "left": runner.left,
        "right": runner.right,
        "feature": runner.feature,
        "threshold": runner.threshold,
        "proba": runner.node_proba,
    }


def confusion_png(metrics: dict[str, Any], title: str, path: str) -> None:
    """The confusion matrix as a PNG, rows = truth, columns = prediction, row-normalised colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, counts = metrics["labels"], np.asarray(metrics["confusion"], dtype=float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5), dpi=110)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=40, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    for i in range(len(labels)):
        for j in range(len(labels)):
            colour = "white" if shares[i, j] > 0.6 else "black"
            ax.text(
                j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=8, color=colour
            )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

"""`linkcast train`; `evaluate` and `models` (in deploy.registrycli); `bench inference`.

This is where the packages meet: ``producers.datasets`` gathers data from
files and simulations, ``models`` learns, judges and records.
"""

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

from producers.cli import positive_float, positive_int
from streams.exceptions import LinkcastError
from streams.settings import KafkaSettings

DEFAULT_DATA = Path("../shared/data")


class ModelCliError(LinkcastError):
    """A model command that cannot run as asked."""


def _horizons(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of bins"
        ) from None
    if not values or min(values) < 1 or list(values) != sorted(set(values)):
        raise argparse.ArgumentTypeError("horizons must be increasing whole numbers of bins >= 1")
    return values


def register(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    train = commands.add_parser("train", help="train a model and add it to the registry")
    kinds = train.add_subparsers(dest="kind", required=True, metavar="KIND")
    c = kinds.add_parser("classifier", help="the traffic classifier (decision tree)")
    c.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    c.add_argument("--sim-runs", type=positive_int, default=3, help="simulation runs (groups)")
    c.add_argument("--sim-duration", type=positive_float, default=300.0, help="s per run")
    c.add_argument("--max-depth", type=positive_int, default=14)
    f = kinds.add_parser("forecaster", help="the LSTM bandwidth forecaster")
    f.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    f.add_argument("--sim-links", type=positive_int, default=3, help="simulated links")
    f.add_argument("--sim-duration", type=positive_float, default=1800.0, help="s of simulation")
    f.add_argument("--epochs", type=positive_int, default=10)
    f.add_argument("--window-bins", type=positive_int, default=60)
    f.add_argument(
        "--horizons", type=_horizons, default=(1, 10, 60), help="bins ahead, e.g. 1,10,60"
    )
    f.add_argument("--stride", type=positive_int, default=3, help="bins between training windows")
    for p in (c, f):
        p.add_argument("--registry", type=Path, help="registry folder (LINKCAST_MODELS_DIR)")
        p.add_argument("--no-promote", action="store_true", help="record, do not make current")
        p.set_defaults(func=run_train)

    ev = commands.add_parser("evaluate", help="judge the current models on data they never saw")
    kinds = ev.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind, what in (
        (
            "classifier",
            "a capture or CSV, or a folder of captures with nDPI .out files and flow CSVs",
        ),
        ("forecaster", "a series CSV or a folder of them"),
    ):
        p = kinds.add_parser(kind, help=f"evaluate the current {kind}")
        p.add_argument("--data", type=Path, required=True, help=what)
        p.add_argument("--registry", type=Path, help="registry folder (LINKCAST_MODELS_DIR)")
        p.set_defaults(func=_evaluate)

    models = commands.add_parser("models", help="list, show, promote and roll back model versions")
    actions = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="every version, the current ones marked")
    show = actions.add_parser("show", help="one version's metadata")
    show.add_argument("kind", choices=["classifier", "forecaster"])
    show.add_argument("version", nargs="?", help="default: the current one")
    promote = actions.add_parser("promote", help="make a version current")
    promote.add_argument("kind", choices=["classifier", "forecaster"])
    promote.add_argument("version")
    rollback = actions.add_parser("rollback", help="make the previous version current again")
    rollback.add_argument("kind", choices=["classifier", "forecaster"])
    announce = actions.add_parser("announce", help="tell running workers the current version")
    announce.add_argument("kind", choices=["classifier", "forecaster"])
    for p in actions.choices.values():
        p.add_argument("--registry", type=Path, help="registry folder (LINKCAST_MODELS_DIR)")
        p.set_defaults(func=_models)
    for p in (promote, rollback):
        p.add_argument(
            "--no-announce",
            action="store_true",
            help="change the registry only; workers pick it up when announced",
        )


def register_bench(benches: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from models.bench import register

    register(benches)


def registry_of(args: argparse.Namespace) -> Any:
    from models.registry import Registry

    return Registry(args.registry or KafkaSettings().models_dir)


def _files(paths: list[Path], root: Path) -> list[str]:
    """'relative/path sha256' of every file, for the training data's fingerprint."""
    out = []
    for path in paths:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        out.append(f"{path.relative_to(root) if path.is_relative_to(root) else path} {digest}")
    return out


def _require_data(root: Path) -> None:
    if not root.is_dir():
        raise ModelCliError(f"{root} is not a folder; give --data the shared data folder")


def run_train(args: argparse.Namespace) -> int:
    registry = registry_of(args)
    _require_data(args.data)
    if args.kind == "classifier":
        from models.classifier import ClassifierParams
        from models.training import train_classifier

        data, parts, benign = _classifier_data(args)
        train_classifier(
            data,
            ClassifierParams(max_depth=args.max_depth),
            registry,
            parts,
            promote=not args.no_promote,
            benign=benign,
        )
    else:
        from models.forecaster import ForecasterParams
        from models.training import train_forecaster

        many, parts = _forecaster_data(args)
        params = ForecasterParams(
            window_bins=args.window_bins, horizons=args.horizons, epochs=args.epochs
        )
        train_forecaster(
            many, params, registry, parts, promote=not args.no_promote, stride=args.stride
        )
    return 0


def _classifier_data(args: argparse.Namespace) -> tuple[Any, list[str], Any]:
    from producers.datasets import data_files, labelled_flows, simulated_flows

    folders = [
        args.data / p for p in ("pcap/ndpi", "pcap/attack", "flows/cicids2017", "flows/westermo")
    ]
    folders = [p for p in folders if p.is_dir()]
    skipped: list[tuple[str, str]] = []
    unlabelled: list[Any] = []
    flows = [
        f for folder in folders for f in labelled_flows(folder, args.data, skipped, unlabelled)
    ]
    flows += simulated_flows(args.sim_runs, args.sim_duration)
    for group, why in skipped:
        print(f"skipped {group}: {why}", file=sys.stderr)
    parts = _files([f for folder in folders for f in data_files(folder)], args.data)
    parts.append(f"simulator runs={args.sim_runs} duration_s={args.sim_duration} seed=0")
    return labelled_data(flows), parts, labelled_data(unlabelled, "benign") if unlabelled else None


def labelled_data(flows: list[Any], label: str | None = None) -> Any:
    import numpy as np

    from models.classifier import LabelledData
    from models.features import flow_matrix

    if not flows:
        raise ModelCliError("no labelled flows found")
    return LabelledData(
        flow_matrix([f.record for f in flows]),
        np.array([label or str(f.record.label) for f in flows]),
        np.array([f.group for f in flows]),
        np.array([f.source for f in flows]),
    )


#: Public series used for training: (file, source name).
TRAINING_SERIES = (
    ("abilene_total_mbps.csv", "abilene-total"),
    ("abilene_demands_long.csv", "abilene-demands"),
    ("nab-ec2_network_in_257a54.csv", "nab-ec2"),
    ("bell_labs_1router_Y.csv", "bell-labs"),
)
TRAINING_CAPTURES = ("pcap/mixed/westermo-right.pcap",)


def _forecaster_data(args: argparse.Namespace) -> tuple[list[Any], list[str]]:
    from models.seriescsv import read_series_csv
    from producers.datasets import capture_series, simulated_series

    files = [args.data / "series" / name for name, _ in TRAINING_SERIES]
    files += [args.data / p for p in TRAINING_CAPTURES]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ModelCliError(f"training data missing: {', '.join(missing)}")
    many = [
        s
        for (name, source) in TRAINING_SERIES
        for s in read_series_csv(args.data / "series" / name, source)
    ]
    for path in TRAINING_CAPTURES:
        many += [
            s.__class__(**{**s.__dict__, "source": "westermo-1s"})
            for s in capture_series(args.data / path)
        ]
    many += simulated_series(args.sim_links, args.sim_duration, seed=1)
    parts = _files(files, args.data)
    parts.append(f"simulator links={args.sim_links} duration_s={args.sim_duration} seed=1")
    return many, parts


def _evaluate(args: argparse.Namespace) -> int:
    from deploy.registrycli import run_evaluate

    return run_evaluate(args)


def _models(args: argparse.Namespace) -> int:
    from deploy.registrycli import run_models

    return run_models(args)

"""`linkcast evaluate` and `linkcast models`: judging the current models and moving versions.

Registered by ``deploy.modelcli``, which also trains; announcing a promoted
version on the models topic happens here.
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from deploy.modelcli import ModelCliError, labelled_data, registry_of
from streams.exceptions import LinkcastError
from streams.settings import KafkaSettings


def run_evaluate(args: argparse.Namespace) -> int:
    from models.runtime import load_classifier, load_forecaster

    registry = registry_of(args)
    if args.kind == "classifier":
        import numpy as np

        from models.classifier import class_metrics
        from models.inference import best_class
        from producers.datasets import data_files, labelled_flows

        classifier = load_classifier(registry.current("classifier"))
        skipped: list[tuple[str, str]] = []
        flows = list(labelled_flows(args.data, args.data, skipped))
        data = labelled_data(flows)
        predicted = np.array([best_class(p) for p in classifier.tree.proba(data.x)])
        result = class_metrics(data.y, predicted)
        result |= {
            "model_version": classifier.version,
            "files": len(set(data.groups.tolist())),
            "skipped_files": [g for g, _ in skipped],
            "seen_in_training": _seen(registry.current("classifier"), data_files(args.data)),
        }
        for cls, m in result["per_class"].items():
            print(
                f"{cls:12s} precision {m['precision']:.3f} recall {m['recall']:.3f} "
                f"f1 {m['f1']:.3f} support {m['support']}"
            )
        print(f"macro-F1 {result['macro_f1']:.3f} over {result['rows']} flows")
    else:
        from models.evaluation import evaluate
        from models.seriescsv import read_series_csv

        forecaster = load_forecaster(registry.current("forecaster"))
        files = [args.data] if args.data.is_file() else sorted(args.data.glob("*.csv"))
        if not files:
            raise ModelCliError(f"no series CSV at {args.data}")
        many = [s for f in files for s in read_series_csv(f)]
        result = evaluate(
            forecaster.engine, many, forecaster.window_bins, forecaster.horizons, "all"
        )
        result["model_version"] = forecaster.version
        result["seen_in_training"] = _seen(registry.current("forecaster"), files)
        for source, entry in result["sources"].items():
            print(f"{source}: {entry['windows']} windows; WAPE | sMAPE by horizon, %")
            print(
                f"  {'model':15s} {_fmt(entry['model']['wape'])} | {_fmt(entry['model']['smape'])}"
            )
            for name, b in entry["baselines"].items():
                print(f"  {name:15s} {_fmt(b['wape'])} | {_fmt(b['smape'])}")
        gate = result["gate"]
        print(
            f"model {result['score']['model']:.2f} % against {gate['best_baseline']} "
            f"{result['score']['baselines'][gate['best_baseline']]:.2f} %"
        )
    print(json.dumps(result, separators=(",", ":")))
    return 0


def _seen(version: Any, files: list[Path]) -> list[str]:
    """The files the version was trained on (by sha256): its figures on them are not a test."""
    trained = {line.rsplit(" ", 1)[-1] for line in version.meta.get("data", [])}
    seen = [str(f) for f in files if hashlib.sha256(f.read_bytes()).hexdigest() in trained]
    if seen:
        print(
            f"warning: {len(seen)} of these {len(files)} files trained {version.kind} "
            f"{version.name}; its figures on them are not a test of unseen data",
            file=sys.stderr,
        )
    return seen


def _fmt(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def run_models(args: argparse.Namespace) -> int:
    from models.exceptions import RegistryError
    from models.registry import KINDS

    registry = registry_of(args)
    if args.action == "list":
        for kind in KINDS:
            try:
                current = registry.current(kind).name
            except RegistryError:
                current = None
            print(f"{kind}: current {current or 'none'}")
            for v in registry.versions(kind):
                mark = "*" if v.name == current else " "
                print(f" {mark} {v.name}  {json.dumps(v.meta.get('summary', {}))}")
    elif args.action == "show":
        version = (
            registry.get(args.kind, args.version) if args.version else registry.current(args.kind)
        )
        print(json.dumps(version.meta, indent=2))
    elif args.action == "announce":
        return _announce(registry.current(args.kind))
    else:
        if args.action == "promote":
            version = registry.promote(args.kind, args.version)
            print(f"{args.kind} {version.name} is current")
        else:
            version = registry.rollback(args.kind)
            print(f"{args.kind} {version.name} is current again")
        if not args.no_announce:
            return _announce(version)
    return 0


def _announce(version: Any) -> int:
    """Publish the version on the models topic, where every worker follows it."""
    import asyncio

    from aiokafka import AIOKafkaProducer

    from streams.admin import wait_for_broker
    from streams.schemas import ModelAnnouncement
    from streams.topics import Topics

    settings = KafkaSettings()
    topic = Topics.from_settings(settings).models
    message = ModelAnnouncement(
        kind=version.kind,
        version=version.name,
        path=str(version.path),
        metrics={k: float(v) for k, v in version.meta.get("summary", {}).items()},
    )

    async def send() -> None:
        await wait_for_broker(settings.kafka_bootstrap, min(settings.broker_timeout_s, 10.0))
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            await producer.send_and_wait(
                topic, key=version.kind.encode(), value=message.model_dump_json().encode()
            )
        finally:
            await producer.stop()

    try:
        asyncio.run(send())
    except LinkcastError as exc:
        print(
            f"not announced ({exc}); the registry is changed: run 'linkcast models announce "
            f"{version.kind}' once the broker is up, or restart the workers",
            file=sys.stderr,
        )
        return 4
    print(f"announced {version.kind} {version.name} on {topic}")
    return 0

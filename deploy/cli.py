"""The `linkcast` command: one entry point, a subcommand per job.

Each package registers its own subcommands (streams: worker, topics, schema;
producers: simulate, replay; api: api); this module adds the local cluster, the
demo and the `bench` group, into which each package registers its benchmarks
(producers: `bench replay`, models: `bench inference`, api: `bench api`).
"""

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from api import bench as api_bench
from api import cli as api_cli
from deploy import modelcli, processorbench, soak, streambench
from models.exceptions import ModelError
from producers import bench as producers_bench
from producers import cli as producers_cli
from streams import cli as streams_cli
from streams.exceptions import LinkcastError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="linkcast",
        description="Real-time network-traffic analytics on Kafka.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    kafka = commands.add_parser(
        "kafka",
        help="run a local Apache Kafka cluster (KRaft) for development and tests",
        description="Start, stop or inspect the local Kafka cluster kept below HOME/kafka.",
    )
    kafka.add_argument("action", choices=["start", "stop", "status"])
    kafka.add_argument(
        "--brokers", type=producers_cli.positive_int, default=1, help="nodes (default 1)"
    )
    kafka.add_argument(
        "--home", type=Path, default=Path(".linkcast"), help="state folder (default .linkcast)"
    )
    kafka.add_argument(
        "--port", type=producers_cli.positive_int, default=9092, help="first client port"
    )
    kafka.add_argument(
        "--timeout", type=producers_cli.positive_float, default=90.0, help="start timeout, s"
    )
    kafka.set_defaults(func=run_kafka)

    demo = commands.add_parser(
        "demo",
        help="run everything locally: broker, topics, worker, API and simulated traffic",
        description="Start the local broker (unless LINKCAST_KAFKA_BOOTSTRAP names another), "
        "the worker, the API and the simulator; stop them all on Ctrl-C.",
    )
    demo.add_argument("--links", type=producers_cli.positive_int, default=8, help="simulated links")
    demo.add_argument("--rate", type=producers_cli.positive_float, default=200.0, help="records/s")
    demo.add_argument("--home", type=Path, default=Path(".linkcast"), help="state folder")
    demo.set_defaults(func=run_demo)

    bench = commands.add_parser(
        "bench",
        help="measure linkcast's throughput beside a reference",
        description="Benchmarks. Each prints its figures and, as its last line, one JSON object: "
        '{"bench": ..., "value": ..., "unit": ..., "baseline": ..., "ratio": ...}.',
    )
    benches = bench.add_subparsers(dest="bench", required=True, metavar="BENCH")
    producers_bench.register(benches)
    api_bench.register(benches)
    modelcli.register_bench(benches)
    streambench.register(benches)
    processorbench.register(benches)
    for name, one in benches.choices.items():
        one.add_argument(
            "--out", type=Path, help=f"JSON result file (default {BENCH_DIR}/{name}*.json)"
        )
        one.set_defaults(func=_recorded(one.get_default("func")))

    streams_cli.register(commands)
    producers_cli.register(commands)
    api_cli.register(commands)
    modelcli.register(commands)
    soak.register(commands)
    return parser


BENCH_DIR = Path(".linkcast") / "bench"
BenchRun = Callable[[argparse.Namespace], tuple[dict[str, Any], dict[str, Any], str]]


def _recorded(run: BenchRun) -> Callable[[argparse.Namespace], int]:
    """A bench that writes its full record to --out (or BENCH_DIR) and ends with its result
    line: each bench returns (result line, full record, its result file's name)."""

    def bench(args: argparse.Namespace) -> int:
        result, full, name = run(args)
        write_record(args.out or BENCH_DIR / name, full)
        print(json.dumps(result))
        return 0

    return bench


def write_record(path: Path, full: dict[str, Any]) -> None:
    """Write a run's full record as JSON to ``path`` and say where."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(full, indent=2) + "\n")
    except OSError as exc:
        raise LinkcastError(f"cannot write the result to {path}: {exc.strerror}") from exc
    print(f"result written to {path}")


def run_kafka(args: argparse.Namespace) -> int:
    from deploy.localkafka import LocalCluster

    cluster = LocalCluster(args.home, brokers=args.brokers, base_port=args.port)
    if args.action == "start":
        started = cluster.start(timeout_s=args.timeout)
        state = f"started node(s) {started}" if started else "already running"
        print(f"Kafka {cluster.brokers} node(s) ready at {cluster.bootstrap} ({state})")
        print(f"logs: {', '.join(str(n.log_path) for n in cluster.nodes)}")
    elif args.action == "stop":
        stopped = cluster.stop()
        print(f"stopped node(s) {stopped}" if stopped else "no linkcast broker was running")
    else:
        for node, pid in cluster.status():
            state = f"running (pid {pid})" if pid else "stopped"
            print(f"node {node.node_id}  {node.host}:{node.broker_port}  {state}  {node.log_path}")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from deploy.demo import Demo

    return Demo(home=args.home, links=args.links, rate=args.rate).run()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    try:
        code: int = args.func(args)
    except (LinkcastError, ModelError) as exc:
        print(f"linkcast {args.command}: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        problems = "; ".join(
            f"LINKCAST_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        print(f"linkcast {args.command}: invalid setting: {problems}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code

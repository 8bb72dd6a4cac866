"""`linkcast simulate`."""

import argparse
import asyncio
import sys
import time

from producers.publish import PublishSummary, publish
from producers.simulator import DEFAULT_START_S, SimulationConfig, simulate
from streams.settings import KafkaSettings
from streams.topics import Topics


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def start_time(text: str) -> float:
    if text == "now":
        return float(int(time.time()))
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither 'now' nor epoch seconds") from None
    if not 0 <= value < 4_102_444_800:
        raise argparse.ArgumentTypeError(f"{text!r} is not an epoch time between 1970 and 2100")
    return value


def add_pacing(parser: argparse.ArgumentParser) -> None:
    """--speed X or --max, shared by every command that publishes records."""
    pacing = parser.add_mutually_exclusive_group()
    pacing.add_argument(
        "--speed",
        type=positive_float,
        default=1.0,
        help="event-time speed-up (default 1: real time)",
    )
    pacing.add_argument("--max", action="store_true", help="publish as fast as the broker takes it")


def register(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    sim = commands.add_parser(
        "simulate",
        help="publish simulated, labelled flow records",
        description="Publish deterministic simulated traffic for N links to <prefix>.flows.",
    )
    sim.add_argument("--links", type=positive_int, default=3, help="number of links (default 3)")
    sim.add_argument(
        "--duration", type=positive_float, default=60.0, help="simulated seconds (default 60)"
    )
    sim.add_argument(
        "--rate",
        type=positive_float,
        default=200.0,
        help="mean flow records per second (default 200)",
    )
    sim.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sim.add_argument(
        "--start",
        type=start_time,
        default=DEFAULT_START_S,
        help="event time of the start, epoch seconds or 'now' (default 2026-01-01T00:00:00Z)",
    )
    add_pacing(sim)
    sim.set_defaults(func=run_simulate)


def run_simulate(args: argparse.Namespace) -> int:
    settings = KafkaSettings()
    config = SimulationConfig(
        links=args.links,
        duration_s=args.duration,
        rate=args.rate,
        seed=args.seed,
        start_s=args.start,
    )
    speed = None if args.max else args.speed
    summary = asyncio.run(
        publish(
            simulate(config),
            bootstrap=settings.kafka_bootstrap,
            topic=Topics.from_settings(settings).flows,
            speed=speed,
            timeout_s=settings.broker_timeout_s,
            on_progress=_progress,
        )
    )
    print(summary.line())
    return 0


def _progress(summary: PublishSummary) -> None:
    print(
        f"  {summary.records} records, {summary.records_per_s:.0f}/s", file=sys.stderr, flush=True
    )

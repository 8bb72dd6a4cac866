"""`linkcast simulate`."""

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from producers.exceptions import CaptureError
from producers.publish import PublishSummary, publish
from producers.simulator import (
    DEFAULT_START_S,
    SimulationConfig,
    link_names,
    simulate,
    simulate_packets,
)
from streams.schemas import TrafficClass
from streams.settings import KafkaSettings
from streams.topics import Topics


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value == float("inf") or value != value:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
    return value


def positive_float(text: str) -> float:
    value = _finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def non_negative_float(text: str) -> float:
    value = _finite_float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or a positive number")
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
        help="publish simulated, labelled flow records (or write them as a capture)",
        description="Publish deterministic simulated traffic for N links to <prefix>.flows: "
        "web, streaming, bulk, interactive and DNS flows with daily and bursty shapes, and "
        "attack episodes (SYN flood, UDP flood, port scan, brute force). With --pcap, write "
        "the same traffic as a capture instead, with a link map beside it.",
    )
    sim.add_argument("--links", type=positive_int, default=3, help="number of links (default 3)")
    sim.add_argument(
        "--duration", type=positive_float, default=60.0, help="simulated seconds (default 60)"
    )
    sim.add_argument(
        "--rate",
        type=positive_float,
        default=200.0,
        help="mean new flows per second over all links, before bursts and attacks (default 200)",
    )
    sim.add_argument(
        "--attack-every",
        type=non_negative_float,
        default=600.0,
        metavar="SECONDS",
        help="mean time between attack episodes on one link; 0 for none (default 600)",
    )
    sim.add_argument(
        "--no-bursts", action="store_true", help="keep each link's rate calm (no flash crowds)"
    )
    sim.add_argument(
        "--pcap",
        type=Path,
        metavar="OUT.pcap",
        help="write the packets to a capture (and OUT.links.json) instead of publishing",
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

    replay = commands.add_parser(
        "replay",
        help="publish the flows of a capture (pcap, pcapng, .gz) or a flow CSV",
        description="Turn a capture into bidirectional flow records (or read a CICFlowMeter or "
        "Westermo flow CSV) and publish them to <prefix>.flows with their own timestamps. "
        "Exit code 0: all read; 3: damaged packets or rows were skipped.",
    )
    replay.add_argument("file", type=Path, help="a .pcap, .pcapng, .gz of either, or a .csv")
    where = replay.add_mutually_exclusive_group()
    where.add_argument("--link", help="link id of every record (default: the file's name)")
    where.add_argument(
        "--link-map", type=Path, help="JSON rules mapping interface/VLAN/subnet/port to links"
    )
    replay.add_argument(
        "--labels", type=Path, help="nDPI .out report (default: FILE.out if present)"
    )
    replay.add_argument(
        "--label", type=TrafficClass, choices=list(TrafficClass), help="class of unlabelled records"
    )
    replay.add_argument("--idle-timeout", type=positive_float, default=15.0, help="seconds (15)")
    replay.add_argument("--active-timeout", type=positive_float, default=30.0, help="seconds (30)")
    replay.add_argument("--loop", type=positive_int, default=1, help="passes, each later in time")
    replay.add_argument("--from", dest="from_s", type=start_time, help="first event time, epoch s")
    replay.add_argument("--to", dest="to_s", type=start_time, help="end event time, epoch s")
    add_pacing(replay)
    replay.set_defaults(func=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    from producers.flowmeter import MeterConfig
    from producers.linkmap import load_link_map, single_link
    from producers.replay import ReplaySource, ReplayStats, records_of, shaped

    if not args.file.is_file():
        raise CaptureError(f"{args.file} does not exist or is not a file")
    settings = KafkaSettings()
    link = args.link or link_name(args.file)
    source = ReplaySource(
        path=args.file,
        link_of=load_link_map(args.link_map) if args.link_map else single_link(link),
        csv_link=link,
        meter=MeterConfig(args.idle_timeout, args.active_timeout),
        labels_path=args.labels,
        default_label=args.label,
    )
    stats = ReplayStats()
    records = shaped(
        lambda: records_of(source, stats), loops=args.loop, from_s=args.from_s, to_s=args.to_s
    )
    summary = asyncio.run(
        publish(
            records,
            bootstrap=settings.kafka_bootstrap,
            topic=Topics.from_settings(settings).flows,
            speed=None if args.max else args.speed,
            timeout_s=settings.broker_timeout_s,
            outage_s=settings.broker_outage_s,
            on_progress=_progress,
        )
    )
    _clear_progress()
    capture, rows = stats.capture, stats.csv
    if source.is_csv:
        print(
            f"read {rows.rows} rows: {rows.non_ip} non-IP flows skipped, "
            f"{rows.bad} bad rows skipped"
        )
        for line in rows.first_errors:
            print(f"  {line}", file=sys.stderr)
    else:
        print(
            f"read {capture.frames} frames: {capture.ip_packets} IP packets "
            f"({capture.ip_bytes} bytes), "
            f"{capture.non_ip} non-IP skipped, {capture.bad} bad packets skipped"
            + (", capture truncated" if capture.truncated else "")
            + (
                f" ({capture.unread_bytes} bytes after the last whole frame not read)"
                if capture.unread_bytes
                else ""
            )
        )
    print(f"{summary.line()}; {stats.labelled} labelled")
    return 3 if stats.skipped_bad else 0


def link_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".pcapng", ".pcap", ".cap", ".csv"):
        name = name.removesuffix(suffix)
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or "capture"


def run_simulate(args: argparse.Namespace) -> int:
    config = SimulationConfig(
        links=args.links,
        duration_s=args.duration,
        rate=args.rate,
        seed=args.seed,
        start_s=args.start,
        attack_every_s=args.attack_every,
        bursts=not args.no_bursts,
    )
    if args.pcap:
        return _simulate_to_pcap(config, args.pcap)
    settings = KafkaSettings()
    speed = None if args.max else args.speed
    summary = asyncio.run(
        publish(
            simulate(config),
            bootstrap=settings.kafka_bootstrap,
            topic=Topics.from_settings(settings).flows,
            speed=speed,
            timeout_s=settings.broker_timeout_s,
            outage_s=settings.broker_outage_s,
            on_progress=_progress,
        )
    )
    print(summary.line())
    return 0


def _simulate_to_pcap(config: SimulationConfig, path: Path) -> int:
    from producers.pcapwriter import link_map, write_pcap

    links_path = path.with_name(path.name.removesuffix(".pcap") + ".links.json")
    started = time.monotonic()
    written = write_pcap(path, simulate_packets(config), config.links)
    try:
        links_path.write_text(json.dumps(link_map(link_names(config.links)), indent=2) + "\n")
    except OSError as exc:
        raise CaptureError(f"cannot write {links_path}: {exc.strerror or exc}") from None
    print(
        f"wrote {written.packets} packets ({written.ip_bytes} IP bytes) to {path} "
        f"in {time.monotonic() - started:.1f} s, and the link map to {links_path}"
    )
    print(f"replay it with: linkcast replay {path} --link-map {links_path}")
    return 0


def _progress(summary: PublishSummary) -> None:
    reached = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(summary.last_ts or 0))
    line = f"{summary.records} records, {summary.records_per_s:.0f}/s, capture time {reached}Z"
    if sys.stderr.isatty():
        print(f"\r  {line}   ", end="", file=sys.stderr, flush=True)
    else:
        print(f"  {line}", file=sys.stderr, flush=True)


def _clear_progress() -> None:
    if sys.stderr.isatty():
        print(file=sys.stderr)

"""`linkcast bench replay FILE`: capture -> Kafka at full speed, beside nfstream on the same file.

linkcast's figure is the path of ``linkcast replay FILE --max``: read the
capture, meter flows, label, encode and publish with the one producer
(acks=all, idempotent), timed from the first packet read to the last record
acknowledged. Connecting to the broker and creating the topic are not timed.
Records go to a throwaway prefix ``bench-<random>``: its flows topic is made
for the run and deleted after it, unless ``--keep-topic``.

The baseline is nfstream turning the same file into flows, with no Kafka: one
meter process, statistical features on (packet size and inter-arrival
min/mean/max/std, as linkcast's meter computes), nDPI dissection off (linkcast
does no DPI of its own), linkcast's idle and active timeouts. It is timed from
creating the streamer to its last flow, so nfstream's start of its meter
process counts.

Packets are IP packets, what both meters count; flows are the records each
exports. ``ratio`` is linkcast packets/s divided by nfstream packets/s: above
1, linkcast is faster. With ``--repeat N`` the runs alternate (linkcast,
nfstream, linkcast, ...) and each side reports its median run by time; of an
even number of runs, the slower of the middle two.
"""

import argparse
import asyncio
import os
import platform
import secrets
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from producers.capture import GZIP_MAGIC, open_capture
from producers.cli import link_name, positive_int
from producers.exceptions import BenchError, CaptureError
from producers.flowmeter import MeterConfig
from producers.linkmap import single_link
from producers.publish import publish
from producers.replay import ReplaySource, ReplayStats, records_of, shaped
from streams.admin import delete_topics, ensure_topics
from streams.exceptions import LinkcastError
from streams.settings import KafkaSettings
from streams.topics import Topics, topic_specs

NFSTREAM_DISSECTIONS = 0  # nDPI off: linkcast's meter does no DPI either


@dataclass(frozen=True)
class Run:
    """One timed pass over the file."""

    packets: int
    flows: int
    seconds: float

    @property
    def packets_per_s(self) -> float:
        return self.packets / self.seconds if self.seconds > 0 else 0.0

    @property
    def flows_per_s(self) -> float:
        return self.flows / self.seconds if self.seconds > 0 else 0.0


def median_run(runs: list[Run]) -> Run:
    """The run in the middle by time; of an even number, the slower of the middle two."""
    return sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]


def register(benches: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add `replay` to the `linkcast bench` group."""
    replay = benches.add_parser(
        "replay",
        help="capture -> Kafka at --max, in packets/s and flows/s, beside nfstream",
        description="Time 'linkcast replay FILE --max' (capture -> flows -> Kafka) and, in the "
        "same run, nfstream turning the same file into flows with no Kafka. Prints the figures, "
        "writes them as JSON to --out and prints one JSON object as the last line.",
    )
    replay.add_argument("file", type=Path, help="a .pcap or .pcapng capture (not compressed)")
    replay.add_argument(
        "--repeat", type=positive_int, default=1, help="runs of each side; the median counts (1)"
    )
    replay.add_argument(
        "--keep-topic", action="store_true", help="keep the bench's flows topic after the run"
    )
    replay.set_defaults(func=run_replay_bench)


def run_replay_bench(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Run the bench; return its result line, its full record and its result file's name."""
    path: Path = args.file
    check_capture(path)
    nfstream_version = _nfstream_version()
    settings = KafkaSettings().model_copy(update={"topic_prefix": f"bench-{secrets.token_hex(4)}"})
    topic = Topics.from_settings(settings).flows
    print(f"bench replay {path}: topic prefix {settings.topic_prefix} ({topic})", flush=True)
    asyncio.run(_create(settings, topic))
    mine: list[Run] = []
    theirs: list[Run] = []
    stats = ReplayStats()
    try:
        for n in range(1, args.repeat + 1):
            stats = ReplayStats()
            mine.append(linkcast_run(path, settings, topic, stats))
            theirs.append(nfstream_run(path, MeterConfig()))
            print(
                f"  run {n}/{args.repeat}: linkcast {mine[-1].seconds:.3f} s, "
                f"nfstream {theirs[-1].seconds:.3f} s",
                flush=True,
            )
    finally:
        _drop(settings, topic, keep=args.keep_topic)
    best_mine, best_theirs = median_run(mine), median_run(theirs)
    result = summary(path, best_mine, best_theirs, repeat=args.repeat)
    result["topic_prefix"] = settings.topic_prefix
    full = {
        **result,
        "topic_kept": args.keep_topic,
        "capture": {
            "frames": stats.capture.frames,
            "ip_packets": stats.capture.ip_packets,
            "ip_bytes": stats.capture.ip_bytes,
            "non_ip_skipped": stats.capture.non_ip,
            "bad_skipped": stats.skipped_bad,
        },
        "baseline_config": nfstream_config(MeterConfig()),
        "runs": {"linkcast": [asdict(r) for r in mine], "nfstream": [asdict(r) for r in theirs]},
        "host": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "nfstream": nfstream_version,
        },
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _report(best_mine, best_theirs, result, stats)
    return result, full, f"replay-{path.stem}.json"


def check_capture(path: Path) -> None:
    """Refuse, with what to do, a file that both linkcast and nfstream cannot read as is."""
    if not path.is_file():
        raise CaptureError(f"{path} does not exist or is not a file")
    if path.suffix.lower() == ".csv":
        raise BenchError(
            f"{path} is a flow CSV; bench replay measures captures (nfstream reads no CSVs)"
        )
    with path.open("rb") as head:
        compressed = head.read(2) == GZIP_MAGIC
    if compressed:
        raise BenchError(
            f"{path} is gzip-compressed and nfstream reads only plain pcap and pcapng; "
            f"decompress it first (gunzip -k {path})"
        )
    stream, _kind = open_capture(path)  # CaptureError if it is not a capture
    stream.close()


def _nfstream_version() -> str:
    try:
        import nfstream
    except ImportError as exc:
        raise BenchError(
            "nfstream is not installed, so there is no baseline to measure against; "
            "install the development tools with \"pip install -e '.[dev]'\""
        ) from exc
    return str(nfstream.__version__)


def linkcast_run(path: Path, settings: KafkaSettings, topic: str, stats: ReplayStats) -> Run:
    """One `linkcast replay FILE --max` pass into ``topic``, timed as publish() times it."""
    link = link_name(path)
    source = ReplaySource(path=path, link_of=single_link(link), csv_link=link)
    published = asyncio.run(
        publish(
            shaped(lambda: records_of(source, stats)),
            bootstrap=settings.kafka_bootstrap,
            topic=topic,
            speed=None,
            timeout_s=settings.broker_timeout_s,
        )
    )
    return Run(published.packets, published.records, published.elapsed_s)


def nfstream_config(meter: MeterConfig) -> dict[str, Any]:
    """nfstream's settings for a like-for-like run: see the module docstring."""
    return {
        "statistical_analysis": True,
        "n_dissections": NFSTREAM_DISSECTIONS,
        "idle_timeout": round(meter.idle_timeout_s),  # nfstream takes whole seconds
        "active_timeout": round(meter.active_timeout_s),
        "n_meters": 1,
    }


def nfstream_run(path: Path, meter: MeterConfig) -> Run:
    """nfstream's own pass over ``path``: flows and their packets, no Kafka."""
    from nfstream import NFStreamer

    flows = packets = 0
    started = time.perf_counter()
    try:
        for flow in NFStreamer(source=str(path), **nfstream_config(meter)):
            flows += 1
            packets += flow.bidirectional_packets
    except ValueError as exc:  # nfstream reports a file it cannot read as a ValueError
        raise BenchError(f"nfstream could not read {path}: {exc}") from exc
    return Run(packets, flows, time.perf_counter() - started)


def summary(path: Path, mine: Run, theirs: Run, *, repeat: int) -> dict[str, Any]:
    """The result object: value, unit, baseline, ratio and the figures behind them."""
    if mine.packets == 0 or theirs.packets == 0:
        raise BenchError(f"{path} holds no IP packets that both meters read: nothing to measure")
    value = round(mine.packets_per_s, 1)
    baseline = round(theirs.packets_per_s, 1)
    return {
        "bench": "replay",
        "value": value,
        "unit": "packets/s",
        "baseline": baseline,
        "ratio": value / baseline,
        "flows_per_s": round(mine.flows_per_s, 1),
        "packets": mine.packets,
        "flows": mine.flows,
        "seconds": round(mine.seconds, 4),
        "baseline_flows_per_s": round(theirs.flows_per_s, 1),
        "baseline_packets": theirs.packets,
        "baseline_flows": theirs.flows,
        "baseline_seconds": round(theirs.seconds, 4),
        "baseline_name": "nfstream",
        "repeat": repeat,
        "statistic": "median",
        "file": str(path),
    }


def _report(mine: Run, theirs: Run, result: dict[str, Any], stats: ReplayStats) -> None:
    capture = stats.capture
    print(
        f"{capture.frames} frames, {capture.ip_packets} IP packets, "
        f"{capture.non_ip} non-IP skipped, {stats.skipped_bad} bad skipped"
    )
    for name, what, run in (
        ("linkcast", "capture -> Kafka, --max", mine),
        ("nfstream", "capture -> flows, no Kafka", theirs),
    ):
        print(
            f"{name:9} {what:27} {run.packets_per_s:>10,.0f} packets/s {run.flows_per_s:>9,.0f} "
            f"flows/s  ({run.packets} packets, {run.flows} flows in {run.seconds:.3f} s)"
        )
    runs = f"median of {result['repeat']} runs each" if result["repeat"] > 1 else "1 run each"
    print(f"ratio     linkcast / nfstream packets/s = {result['ratio']:.3f} ({runs})")
    if mine.packets != theirs.packets:
        print(
            f"note: the meters read different packet counts ({mine.packets} and "
            f"{theirs.packets}); each rate uses its own",
            file=sys.stderr,
        )


async def _create(settings: KafkaSettings, topic: str) -> None:
    specs = [s for s in topic_specs(settings) if s.name == topic]
    await ensure_topics(settings.kafka_bootstrap, specs, settings.broker_timeout_s)


def _drop(settings: KafkaSettings, topic: str, *, keep: bool) -> None:
    """Delete the bench's topic; a failure here is reported, never raised over the result."""
    if keep:
        print(f"  kept topic {topic}", flush=True)
        return
    try:
        refused = asyncio.run(
            delete_topics(settings.kafka_bootstrap, [topic], settings.broker_timeout_s)
        )
    except LinkcastError as exc:
        refused = {topic: -1}
        print(f"  {exc}", file=sys.stderr)
    if refused:
        print(f"could not delete topic {topic}; delete it yourself", file=sys.stderr)

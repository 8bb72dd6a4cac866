"""`linkcast bench processor`: the worker's own work per flow, without Kafka or Faust.

``bench stream`` measures a whole worker; this measures what is linkcast's in
it: ``streams.processor.LinkProcessor`` with the packaged classifier and
forecaster and a plain dict as its table, fed the same records as ``bench
stream`` (the simulator's, re-keyed round-robin over ``--links`` links at
``--link-rate`` records per link per second of event time) in batches of
``streams.acks.DRAIN_EVERY`` messages, each batch drained, and the states
stored at the worker's checkpoint interval (``LINKCAST_CHECKPOINT_S``), as
the worker's reader does. The records are built in memory first; only the processing is timed.

Beside it, in the same run, the baseline: ``json.loads`` of every message, the
least any consumer does with them. The ratio says how many times a record's
decoding linkcast's work costs. A profile of this loop (``--profile FILE``
writes cProfile's statistics) shows where the time goes.
"""

import argparse
import cProfile
import json
import os
import time
from pathlib import Path
from typing import Any

from deploy.streambench import StreamBenchError, pinned, record_pool
from streams.acks import DRAIN_EVERY
from streams.processor import FlowMessage


def register(benches: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add `processor` to the `linkcast bench` group."""
    from producers.cli import positive_float, positive_int

    p = benches.add_parser(
        "processor",
        help="the worker's per-flow work alone (no Kafka), in records/s, beside json.loads",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--records", type=positive_int, default=200_000)
    p.add_argument("--links", type=positive_int, default=200)
    p.add_argument("--link-rate", type=positive_float, default=10.0)
    p.add_argument("--cpu", type=int, default=None, help="CPU to run on (default: last)")
    p.add_argument("--profile", type=Path, help="write cProfile statistics of the run here")
    p.set_defaults(func=run_processor_bench)


def messages(records: int, links: int, link_rate: float) -> list[FlowMessage]:
    """``bench stream``'s records, as the reader hands them to the processor."""
    pool = record_pool(min(20_000, records))
    t0 = float(int(time.time() - records / links / link_rate - 3600))
    width = len(str(links - 1))
    out: list[FlowMessage] = []
    for i in range(records):
        fields = dict(pool[i % len(pool)])
        name = f"link-{i % links:0{width}d}"
        ts = t0 + (i // links) / link_rate
        fields["link"], fields["ts"] = name, ts
        if "start" in fields:
            fields["start"] = max(0.0, ts + fields["start"])
        out.append((name.encode(), json.dumps(fields).encode(), i % 4, i // 4, int(ts * 1000)))
    return out


def run_processor_bench(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], str]:
    from streams.app import _current
    from streams.bins import BinConfig
    from streams.cli import tune_gc
    from streams.processor import LinkProcessor
    from streams.settings import StreamSettings

    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[-1] if args.cpu is None else args.cpu
    if cpu not in cpus:
        raise StreamBenchError(f"--cpu {cpu} is not one of this process's CPUs {cpus}")
    settings = StreamSettings(models_dir=Path("/nonexistent-registry"))  # the packaged models
    checkpoint_s = settings.checkpoint_interval_s
    with pinned({cpu}):  # the models are loaded pinned: LiteRT sizes its threads then
        processor = LinkProcessor(
            BinConfig.of(settings.bin_s, settings.lateness_s, settings.window_bins),
            {},
            source_topic="bench.flows",
            idle_close_after_s=settings.idle_close_after_s,
            classifier=_current(settings, "classifier"),
            forecaster=_current(settings, "forecaster"),
        )
    tune_gc()  # as the worker does before it starts, which has no such input to freeze
    batch = messages(args.records, args.links, args.link_rate)
    counts = {"bins": 0, "forecasts": 0, "classifications": 0}

    def process() -> None:
        stored_s = time.time()
        for k in range(0, len(batch), DRAIN_EVERY):
            processor.on_flows(batch[k : k + DRAIN_EVERY], time.time())
            now_s = time.time()
            # the worker stores states at its checkpoints only, and at the end
            store = now_s - stored_s >= checkpoint_s or k + DRAIN_EVERY >= len(batch)
            out = processor.drain(now_s, store=store)
            stored_s = now_s if store else stored_s
            processor.store_states(out)
            counts["bins"] += out.bins_closed
            counts["forecasts"] += len(out.forecasts)
            counts["classifications"] += len(out.classifications)

    with pinned({cpu}):
        started = time.perf_counter()
        for _, value, _, _, _ in batch:
            json.loads(value or b"")
        baseline_s = time.perf_counter() - started
        started = time.perf_counter()
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(process)
            profiler.dump_stats(args.profile)
        else:
            process()
        seconds = time.perf_counter() - started
    if counts["classifications"] != args.records:
        raise StreamBenchError(
            f"{counts['classifications']} of {args.records} records were classified"
        )
    rate, baseline = args.records / seconds, args.records / baseline_s
    print(
        f"processor: {rate:,.0f} records/s ({counts['bins']:,} bins closed, "
        f"{counts['forecasts']:,} forecasts); json.loads alone: {baseline:,.0f} records/s"
        + (" (under cProfile)" if args.profile else "")
    )
    result = {
        "bench": "processor",
        "value": rate,
        "unit": "records/s",
        "baseline": baseline,
        "ratio": rate / baseline,
        "records": args.records,
        "links": args.links,
        "profiled": bool(args.profile),
        **counts,
    }
    full = {**result, "cpu": cpu, "link_rate": args.link_rate, "checkpoint_s": checkpoint_s}
    return result, full, "processor.json"

"""The figures of a `linkcast soak` run: a row per sample, the verdict, the JSON record."""

import os
import platform
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploy import growth
from deploy.soaksample import STAGES, Sample, quantile

if TYPE_CHECKING:
    from deploy.soak import Plan

MIB = 1 << 20
MEMORY_SLOPE = 0.005  # of the judged half's first memory sample, per minute
MEMORY_MARGIN = 0.02  # of the same
LAG_SLOPE_S = 1.0  # seconds of input per minute
LAG_MARGIN_S = 5.0  # seconds of input
HEADER = (
    f"{'t s':>6} {'RSS MiB':>8} {'heap MiB':>8} {'CPU %':>6} {'lag':>7} {'links':>7} {'in/s':>7} "
    f"{'bins/s':>7} {'rec->close p50/p99 s':>21} {'close->fc p50/p99 ms':>21} {'load1':>6}"
)


def interval(before: Sample | None, after: Sample) -> dict[str, Any]:
    """The figures of the interval ending at ``after`` (from the start if no ``before``)."""
    span_s = after.t_s - (before.t_s if before else 0.0)
    row: dict[str, Any] = {
        "t_s": round(after.t_s, 1),
        "rss_mib": after.rss_bytes / MIB,
        # what glibc's malloc has handed out (RSS also holds its free heap, Python's own
        # arenas and the libraries)
        "heap_in_use_mib": None
        if after.heap_in_use_bytes is None
        else after.heap_in_use_bytes / MIB,
        "cpu_share": (after.cpu_s - (before.cpu_s if before else 0.0)) / span_s if before else None,
        "lag": after.lag,
        "links_tracked": after.links_tracked,
        "sent": after.sent,
        "records_in_per_s": (after.records_in - (before.records_in if before else 0.0)) / span_s,
        "bins_closed_per_s": (after.bins_closed - (before.bins_closed if before else 0.0)) / span_s,
        "load1": after.load1,
    }
    for stage in STAGES:
        earlier = before.latency.get(stage, {}) if before else {}
        for q in (0.5, 0.99):
            row[f"{stage}_p{round(q * 100)}_s"] = quantile(q, earlier, after.latency[stage])
    return row


def rows(samples: list[Sample]) -> list[dict[str, Any]]:
    return [interval(samples[k - 1] if k else None, s) for k, s in enumerate(samples)]


def row_text(row: dict[str, Any]) -> str:
    def s(value: float | None, scale: float = 1.0, digits: int = 2) -> str:
        return "-" if value is None else f"{value * scale:.{digits}f}"

    cpu = "-" if row["cpu_share"] is None else f"{row['cpu_share'] * 100:.0f}"
    heap = s(row["heap_in_use_mib"], digits=0)
    to_close = f"{s(row['record_to_bin_close_p50_s'])}/{s(row['record_to_bin_close_p99_s'])}"
    to_fc = (
        f"{s(row['bin_close_to_forecast_p50_s'], 1000, 1)}/"
        f"{s(row['bin_close_to_forecast_p99_s'], 1000, 1)}"
    )
    return (
        f"{row['t_s']:>6.0f} {row['rss_mib']:>8.1f} {heap:>8} {cpu:>6} {row['lag']:>7.0f} "
        f"{row['links_tracked']:>7.0f} {row['records_in_per_s']:>7.0f} "
        f"{row['bins_closed_per_s']:>7.0f} {to_close:>21} {to_fc:>21} {row['load1']:>6.2f}"
    )


def verdicts(
    plan: "Plan", samples: list[Sample], drained_s: float | None
) -> tuple[dict[str, Any], list[str]]:
    """The judged trends and the reasons the run fails (none: it passes)."""
    times = [s.t_s for s in samples]
    rss = [s.rss_bytes / MIB for s in samples]
    base = growth.judged(times, rss)[0][1]
    memory = growth.trend(
        times, rss, allowed_per_min=MEMORY_SLOPE * base, margin=MEMORY_MARGIN * base
    )
    lag = growth.trend(
        times,
        [s.lag for s in samples],
        allowed_per_min=LAG_SLOPE_S * plan.rate,
        margin=LAG_MARGIN_S * plan.rate,
    )
    failures = []
    if memory.growing:
        failures.append(
            f"memory keeps growing: {memory.slope_per_min:+.2f} MiB/min over the second half "
            f"(allowed {MEMORY_SLOPE * base:.2f}), {memory.early:.1f} -> {memory.late:.1f} MiB"
        )
    if lag.growing:
        failures.append(
            f"lag keeps growing: {lag.slope_per_min:+.0f} records/min over the second half "
            f"(allowed {LAG_SLOPE_S * plan.rate:.0f}), {lag.early:.0f} -> {lag.late:.0f}"
        )
    if drained_s is None:
        failures.append("the worker did not catch up within the drain time after the load stopped")
    judged = {"memory_mib": asdict(memory), "lag_records": asdict(lag), "drained_s": drained_s}
    return judged, failures


def report(plan: "Plan", samples: list[Sample], drained_s: float | None, out: Path | None) -> int:
    """Print the summary and verdict, write the JSON record; 0 if it held, 1 if not."""
    from deploy.cli import BENCH_DIR, write_record

    table = rows(samples)
    judged, failures = verdicts(plan, samples, drained_s)
    steady = [r for r in table if r["t_s"] >= samples[-1].t_s / 2]
    summary = {
        "rss_mib_first": table[0]["rss_mib"],
        "rss_mib_last": table[-1]["rss_mib"],
        "rss_mib_peak": max(r["rss_mib"] for r in table),
        "lag_max": max(r["lag"] for r in table),
        "lag_last": table[-1]["lag"],
        "links_tracked_max": max(r["links_tracked"] for r in table),
        "records_sent": samples[-1].sent,
        "records_in_per_s_second_half": sum(r["records_in_per_s"] for r in steady) / len(steady),
        "cpu_share_second_half": _mean(r["cpu_share"] for r in steady),
        "load1_mean": sum(r["load1"] for r in table) / len(table),
    }
    print("\n" + HEADER)
    for row in table:
        print(row_text(row))
    cpu = summary["cpu_share_second_half"]
    print(
        f"\nmemory {summary['rss_mib_first']:.1f} -> {summary['rss_mib_last']:.1f} MiB "
        f"(peak {summary['rss_mib_peak']:.1f}); lag max {summary['lag_max']:.0f}, last "
        f"{summary['lag_last']:.0f}; links tracked max {summary['links_tracked_max']:.0f}; "
        f"worker CPU {'-' if cpu is None else f'{cpu:.0%}'} of its core over the second half; "
        f"load average {summary['load1_mean']:.2f} on {os.cpu_count()} CPUs"
    )
    drained = judged["drained_s"]
    print(
        f"second half: memory {judged['memory_mib']['slope_per_min']:+.2f} MiB/min, lag "
        f"{judged['lag_records']['slope_per_min']:+.0f} records/min; "
        + ("caught up " + f"{drained:.1f} s after the load stopped" if drained is not None else "")
    )
    full = {
        "plan": asdict(plan),
        "summary": summary,
        "judged": judged,
        "failures": failures,
        "samples": table,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    write_record(out or BENCH_DIR / "soak.json", full)
    for failure in failures:
        print(f"FAIL: {failure}")
    print("soak: FAILED" if failures else "soak: held (memory and lag flat, caught up)")
    return 1 if failures else 0


def _mean(values: Any) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None

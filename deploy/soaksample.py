"""What `linkcast soak` reads from a running worker: one sample of its memory, CPU and
metrics, and the latency quantiles of an interval from two samples' histograms."""

import math
import os
import urllib.request
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

STAGES = ("record_to_bin_close", "bin_close_to_forecast")
LATENCY = "linkcast_stage_latency_seconds_bucket"
TICKS_PER_S = os.sysconf("SC_CLK_TCK")

Buckets = dict[float, float]  # upper bound in s (inf included) -> cumulative count


@dataclass(frozen=True)
class Sample:
    """The worker at one moment, ``t_s`` seconds after the producer started."""

    t_s: float
    sent: int  # records the soak's producer had handed to Kafka
    rss_bytes: int
    cpu_s: float  # user + system CPU time the worker has used
    records_in: float
    bins_closed: float
    links_tracked: float
    lag: float  # flows messages not yet processed, all partitions
    partitions_seen: int  # partitions with a lag figure (the worker reports its own)
    load1: float  # the machine's one-minute load average
    heap_in_use_bytes: float | None = None  # glibc's, from the worker's metrics (None: not shown)
    latency: dict[str, Buckets] = field(default_factory=dict)  # stage -> buckets


def read_metrics(url: str) -> list[tuple[str, dict[str, str], float]] | None:
    """The samples of the worker's /metrics page, or None while it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def process_usage(pid: int) -> tuple[int, float]:
    """(resident memory in bytes, user + system CPU seconds) of process ``pid``."""
    with open(f"/proc/{pid}/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    with open(f"/proc/{pid}/stat") as stat:
        # the fields after the command name, which may hold spaces, start after its ')'
        fields = stat.read().rpartition(")")[2].split()
    return kib * 1024, (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def take_sample(pid: int, url: str, t_s: float, sent: int) -> Sample | None:
    """One sample of the worker, or None while its metrics page does not answer."""
    metrics = read_metrics(url)
    if metrics is None:
        return None
    rss, cpu = process_usage(pid)
    plain: dict[str, float] = {}
    lag_by_partition: dict[str, float] = {}
    latency: dict[str, Buckets] = {stage: {} for stage in STAGES}
    for name, labels, value in metrics:
        if name == "linkcast_consumer_lag_records":
            lag_by_partition[labels["partition"]] = value
        elif name == LATENCY and labels.get("stage") in latency:
            latency[labels["stage"]][float(labels["le"])] = value
        elif not labels:
            plain[name] = value
    return Sample(
        t_s=t_s,
        sent=sent,
        rss_bytes=rss,
        cpu_s=cpu,
        records_in=plain.get("linkcast_records_in_total", 0.0),
        bins_closed=plain.get("linkcast_bins_closed_total", 0.0),
        links_tracked=plain.get("linkcast_links_tracked", 0.0),
        lag=sum(lag_by_partition.values()),
        partitions_seen=len(lag_by_partition),
        load1=os.getloadavg()[0],
        heap_in_use_bytes=plain.get("linkcast_malloc_in_use_bytes"),
        latency=latency,
    )


def quantile(q: float, before: Buckets, after: Buckets) -> float | None:
    """The ``q`` quantile in s of the observations between two readings of one histogram,
    interpolated linearly inside its bucket as Prometheus' ``histogram_quantile`` does
    (above the largest finite bound: that bound). None when nothing was observed."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return None
    rank = q * counts[-1]
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower

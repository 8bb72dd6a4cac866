"""The worker's Prometheus metrics, served on its web port at /metrics."""

from collections.abc import Sequence

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

RECORDS_IN = Counter("linkcast_records_in_total", "Messages read from the flows topic")
RECORDS_REJECTED = Counter(
    "linkcast_records_rejected_total",
    "Flow messages sent to the dead-letter topic, by reason",
    ["reason"],
)
RECORDS_DUPLICATE = Counter(
    "linkcast_records_duplicate_total",
    "Flow messages redelivered after a restart and skipped because the state already has them",
)
REWINDS = Counter(
    "linkcast_consumer_rewinds_total",
    "Times the worker saw a flows offset skipped and read the partition again from it",
)
BINS_CLOSED = Counter("linkcast_bins_closed_total", "Per-link bins closed and published")
STATES_STORED = Counter(
    "linkcast_link_states_stored_total",
    "Link states written to the worker's table and changelog (deletions of expired links "
    "included); at checkpoints, each link with records not yet stored",
)
LINKS_TRACKED = Gauge("linkcast_links_tracked", "Links held by this worker")
FORECASTS = Counter("linkcast_forecasts_total", "Forecasts published (one per closed bin)")
FORECAST_FAILURES = Counter(
    "linkcast_forecast_failures_total", "Closed bins whose forecast failed (the stream went on)"
)
FORECAST_RELATIVE_ERROR = Histogram(
    "linkcast_forecast_relative_error",
    "Scored forecasts' |forecast - actual| / max(actual, 1 kbit/s), by horizon",
    ["horizon_s"],
    buckets=(0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
)
FORECASTS_INSIDE_INTERVAL = Counter(
    "linkcast_forecasts_inside_interval_total",
    "Scored forecasts whose actual value fell inside the interval, by horizon",
    ["horizon_s"],
)
FORECASTS_SCORED = Counter(
    "linkcast_forecasts_scored_total", "Forecasts scored as their bins closed", ["horizon_s"]
)
ALERTS = Counter(
    "linkcast_alerts_total",
    "Alerts published, by reason and state (raised, cleared)",
    ["reason", "state"],
)
STAGE_LATENCY = Histogram(
    "linkcast_stage_latency_seconds",
    "Processing time between pipeline stages: a bin's last record to the bin's close, "
    "a bin's close to its forecast",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
)
INFERENCE = Histogram(
    "linkcast_model_inference_seconds",
    "Time of one model call (the forecaster's covers every link of one message)",
    ["model"],
    buckets=(0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0),
)
CONSUMER_LAG = Gauge(
    "linkcast_consumer_lag_records",
    "Flows messages not yet processed, per partition",
    ["partition"],
)
FORECAST_ABS_ERROR = Counter(
    "linkcast_forecast_abs_error_bps_total",
    "Sum of scored forecasts' |forecast - actual| in bits/s, by horizon; divided by "
    "linkcast_forecast_actual_bps_total it is the live WAPE",
    ["horizon_s"],
)
FORECAST_ACTUAL = Counter(
    "linkcast_forecast_actual_bps_total",
    "Sum of the actual bits/s of scored forecasts' bins, by horizon",
    ["horizon_s"],
)
MODEL_INFO = Gauge(
    "linkcast_model_info", "1 for the model version this worker uses, by kind", ["kind", "version"]
)
MODEL_EVALUATION_WAPE = Gauge(
    "linkcast_forecaster_evaluation_wape_ratio",
    "WAPE of the forecaster in use on its held-out test data when it was trained "
    "(0.366 is 36.6 %); the live WAPE drifting above it means the model no longer fits",
)
KAFKA_REACHABLE = Gauge(
    "linkcast_kafka_reachable", "1 while the Kafka cluster answers a metadata request, else 0"
)
KAFKA_OUTAGES = Counter("linkcast_kafka_outages_total", "Times the Kafka cluster stopped answering")
KAFKA_OUTAGE_SECONDS = Counter(
    "linkcast_kafka_unreachable_seconds_total", "Seconds the Kafka cluster did not answer"
)


def set_model(kind: str, version: str, previous: str | None, metrics: dict[str, float]) -> None:
    """Show ``version`` as the ``kind`` model in use (and its evaluation figure)."""
    if previous is not None:
        MODEL_INFO.remove(kind, previous)
    MODEL_INFO.labels(kind=kind, version=version).set(1)
    if kind == "forecaster" and "wape" in metrics:
        MODEL_EVALUATION_WAPE.set(metrics["wape"] / 100)


def observe_all(histogram: Histogram, values: Sequence[float]) -> None:
    """``histogram.observe`` of every value (a labelled child, or one without labels): the
    values counted per bucket at once, each bucket's count and the sum added once.

    ``observe`` takes a lock for the sum and for one bucket per value; for the
    worker's two per-bin latencies and its forecast errors that came to 1.7 % of its
    time in a py-spy profile of ``linkcast bench stream``. This uses
    prometheus_client's own bucket values (``_upper_bounds``, ``_buckets``,
    ``_sum``), and falls back to ``observe`` should a version not have them;
    ``test_metrics`` checks both give the same exposition. The sum is added as one
    number, so it may differ in its last bits from adding each value in turn.
    """
    if not values:
        return
    try:
        bounds, buckets, total = histogram._upper_bounds, histogram._buckets, histogram._sum
    except AttributeError:
        for value in values:
            histogram.observe(value)
        return
    histogram._raise_if_not_observable()
    # observe counts a value in the first bucket whose bound is at or above it
    places = np.searchsorted(bounds, values, side="left")
    counts = np.bincount(places, minlength=len(bounds))[: len(bounds)]  # NaN: none, as there
    total.inc(float(sum(values)))
    for bucket, count in zip(buckets, counts.tolist(), strict=True):
        if count:
            bucket.inc(count)

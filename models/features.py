"""The one feature code path: flow records -> classifier features, bins -> forecaster inputs.

Training, the stream worker and the API call these functions and nothing
else, so a model always sees the features it was trained on. The feature
schema (names and version) is stored with every model version and checked when
the model is loaded.

Flow features are computed from any object with a FlowRecord's attribute names
(a ``streams.schemas.FlowRecord``, or a mapping of the same keys): ``models``
imports nothing of ours. A field a record does not have becomes -1, a value no
real flow has, so a tree can tell "unknown" from "zero".

Forecaster inputs are scale-free: a window's bandwidth is taken as
``log1p(bps)`` minus its mean over the window (the window's *level*), so one
model serves a 10 kbit/s link and a 10 Gbit/s one, and its outputs are turned
back into bits per second with that level (``to_bps``).
"""

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from models.classes import CLASSES

MISSING = -1.0
FLOW_FEATURES_VERSION = 1
#: Record fields that are features as they are (packet sizes and inter-arrival times).
_PASSED_THROUGH = ("pkt_len_min", "pkt_len_mean", "pkt_len_max", "pkt_len_std",
                   "iat_mean_s", "iat_std_s", "iat_max_s")  # fmt: skip
FLOW_FEATURES: tuple[str, ...] = (
    "log_bytes",
    "log_packets",
    "mean_packet_bytes",
    "duration_s",
    "log_bps",
    "log_pps",
    "proto",
    "sport",
    "dport",
    "low_port",
    "syn_share",
    "fin_share",
    "rst_share",
    "psh_share",
    "ack_share",
    "fwd_byte_share",
    "fwd_packet_share",
    *_PASSED_THROUGH,
)
_FLAG_COUNTS = ("syn_count", "fin_count", "rst_count", "psh_count", "ack_count")

SERIES_FEATURES_VERSION = 1
SERIES_CHANNELS: tuple[str, ...] = (
    "level",
    "packets",
    "flows",
    "counts_known",
    *(f"mix_{name}" for name in CLASSES),
    "tod_sin",
    "tod_cos",
    "log10_bin_s",
)
DAY_S = 86_400.0


def feature_schema() -> dict[str, Any]:
    """What a model version records and what loading it checks."""
    return {
        "flow_features": list(FLOW_FEATURES),
        "flow_features_version": FLOW_FEATURES_VERSION,
        "series_channels": list(SERIES_CHANNELS),
        "series_features_version": SERIES_FEATURES_VERSION,
        "classes": list(CLASSES),
    }


# ---- flows -> classifier features -------------------------------------------


def _getter(record: Any) -> Callable[[str], Any]:
    """``get(name)``: a field of ``record``, None where it has none, decided once per record
    (an ``isinstance`` and a ``getattr`` per field took about a tenth of the stream
    processor's time in a cProfile). A pydantic model keeps its fields in its
    ``__dict__``."""
    if isinstance(record, Mapping):
        return record.get
    fields = getattr(record, "__dict__", None)
    if fields is not None and hasattr(type(record), "model_fields"):  # a pydantic model
        return fields.get
    return lambda name: getattr(record, name, None)


def _share(part: Any, whole: float) -> float:
    return MISSING if part is None or whole <= 0 else float(part) / whole


def flow_features(record: Any) -> list[float]:
    """The classifier features of one flow record, in FLOW_FEATURES order."""
    get = _getter(record)
    size = float(get("bytes"))
    packets = float(get("packets"))
    ts = float(get("ts"))
    start = get("start")
    duration = MISSING if start is None else max(0.0, ts - float(start))
    if duration > 0:
        log_bps = math.log1p(8.0 * size / duration)
        log_pps = math.log1p(packets / duration)
    else:
        log_bps = log_pps = MISSING
    proto, sport, dport = (get(k) for k in ("proto", "sport", "dport"))
    ports = [p for p in (sport, dport) if p is not None]
    features = [
        math.log1p(size),
        math.log1p(packets),
        size / packets,
        duration,
        log_bps,
        log_pps,
        MISSING if proto is None else float(proto),
        MISSING if sport is None else float(sport),
        MISSING if dport is None else float(dport),
        float(min(ports)) if ports else MISSING,
        *(_share(get(name), packets) for name in _FLAG_COUNTS),
        _share(get("fwd_bytes"), size),
        _share(get("fwd_packets"), packets),
    ]
    for name in _PASSED_THROUGH:
        value = get(name)
        features.append(MISSING if value is None else float(value))
    return features


def flow_matrix(records: Sequence[Any]) -> np.ndarray:
    """Features of many records, shape (n, len(FLOW_FEATURES)), float32 as the models use."""
    if not records:
        return np.zeros((0, len(FLOW_FEATURES)), dtype=np.float32)
    return np.asarray([flow_features(r) for r in records], dtype=np.float64).astype(np.float32)


# ---- bins -> forecaster inputs ----------------------------------------------


def series_inputs(
    bps: np.ndarray,
    bin_start_s: np.ndarray,
    bin_s: float,
    *,
    packets: np.ndarray | None = None,
    flows: np.ndarray | None = None,
    class_bytes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Forecaster inputs for n windows of T bins each, and each window's level.

    ``bps``, ``bin_start_s``, ``packets`` and ``flows`` have shape (n, T),
    oldest bin first; ``class_bytes`` has shape (n, T, len(CLASSES)). Series
    without counts or class mix (most public bandwidth series) leave them out:
    their channels are zero and ``counts_known`` says so. Returns ``x`` of
    shape (n, T, len(SERIES_CHANNELS)), float32, and ``level`` of shape (n,),
    float64: the mean of ``log1p(bps)`` over each window.
    """
    bps = np.asarray(bps, dtype=np.float64)
    if bps.ndim != 2:
        raise ValueError(f"bps must have shape (windows, bins), got {bps.shape}")
    n, t = bps.shape
    log_bps = np.log1p(np.maximum(bps, 0.0))
    level = log_bps.mean(axis=1)
    x = np.zeros((n, t, len(SERIES_CHANNELS)), dtype=np.float64)
    x[:, :, 0] = log_bps - level[:, None]
    if packets is not None and flows is not None:
        for channel, counts in ((1, packets), (2, flows)):
            logs = np.log1p(np.maximum(np.asarray(counts, dtype=np.float64), 0.0))
            x[:, :, channel] = logs - logs.mean(axis=1, keepdims=True)
        x[:, :, 3] = 1.0
    if class_bytes is not None:
        mix = np.asarray(class_bytes, dtype=np.float64)
        totals = mix.sum(axis=2, keepdims=True)
        x[:, :, 4 : 4 + len(CLASSES)] = np.divide(
            mix, totals, out=np.zeros_like(mix), where=totals > 0
        )
    phase = 2.0 * np.pi * (np.asarray(bin_start_s, dtype=np.float64) % DAY_S) / DAY_S
    x[:, :, -3] = np.sin(phase)
    x[:, :, -2] = np.cos(phase)
    x[:, :, -1] = math.log10(bin_s)
    return x.astype(np.float32), level


def series_targets(future_bps: np.ndarray, level: np.ndarray) -> np.ndarray:
    """What the forecaster learns to output for the bins ahead: log1p(bps) minus the level."""
    return np.log1p(np.maximum(np.asarray(future_bps, dtype=np.float64), 0.0)) - level[:, None]


def to_bps(outputs: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Forecaster outputs (n, H, ...) back to bits per second, never negative."""
    shape = (-1,) + (1,) * (outputs.ndim - 1)
    return np.maximum(np.expm1(outputs.astype(np.float64) + level.reshape(shape)), 0.0)

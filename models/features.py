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


#: The record fields the flow features are computed from, all numbers.
FLOW_INPUTS: tuple[str, ...] = (
    "bytes",
    "packets",
    "ts",
    "start",
    "proto",
    "sport",
    "dport",
    *_FLAG_COUNTS,
    "fwd_bytes",
    "fwd_packets",
    *_PASSED_THROUGH,
)


def _getter(record: Any) -> Callable[[str], Any]:
    """``get(name)``: a field of ``record``, None where it has none. A pydantic model
    keeps its fields in its ``__dict__``."""
    if isinstance(record, Mapping):
        return record.get
    fields = getattr(record, "__dict__", None)
    if fields is not None and hasattr(type(record), "model_fields"):  # a pydantic model
        return fields.get
    return lambda name: getattr(record, name, None)


def flow_inputs(records: Sequence[Any]) -> dict[str, np.ndarray]:
    """The FLOW_INPUTS of records, one float64 column per field, NaN where a record has none."""
    rows = [[get(name) for name in FLOW_INPUTS] for get in map(_getter, records)]
    table = np.array(rows, dtype=np.float64).reshape(len(rows), len(FLOW_INPUTS))
    return {name: table[:, j] for j, name in enumerate(FLOW_INPUTS)}


def _known(column: np.ndarray) -> np.ndarray:
    """A column with MISSING where it has no value (NaN)."""
    return np.where(np.isnan(column), MISSING, column)


def _shares(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """``part / whole``; MISSING where the part is unknown or the whole is not positive."""
    return np.where(np.isnan(part) | ~(whole > 0), MISSING, part / whole)


def feature_table(inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """The classifier features of n flows, (n, len(FLOW_FEATURES)) float64, from their
    FLOW_INPUTS columns (``flow_inputs``, or the stream's own decoding): every record at
    once, the one feature code path for training, the worker and the API.

    numpy's ``log1p`` may differ from ``math.log1p`` in the last bit of a float64 (it
    did for 3.5 % of random values on an AVX-512 machine); the models see float32
    features, where none of those differed.
    """
    size, packets, ts, start = (inputs[k] for k in ("bytes", "packets", "ts", "start"))
    sport, dport = inputs["sport"], inputs["dport"]
    with np.errstate(divide="ignore", invalid="ignore"):
        duration = np.where(np.isnan(start), MISSING, np.maximum(0.0, ts - start))
        moving = duration > 0
        columns = [
            np.log1p(size),
            np.log1p(packets),
            size / packets,
            duration,
            np.where(moving, np.log1p(8.0 * size / duration), MISSING),
            np.where(moving, np.log1p(packets / duration), MISSING),
            _known(inputs["proto"]),
            _known(sport),
            _known(dport),
            _known(np.fmin(sport, dport)),  # the lower port of those known
            *(_shares(inputs[name], packets) for name in _FLAG_COUNTS),
            _shares(inputs["fwd_bytes"], size),
            _shares(inputs["fwd_packets"], packets),
            *(_known(inputs[name]) for name in _PASSED_THROUGH),
        ]
    return np.stack(columns, axis=1) if len(size) else np.zeros((0, len(FLOW_FEATURES)))


def flow_features(record: Any) -> list[float]:
    """The classifier features of one flow record, in FLOW_FEATURES order."""
    features: list[float] = feature_table(flow_inputs([record]))[0].tolist()
    return features


def feature_matrix(inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """``feature_table`` as float32, as the models use it."""
    return feature_table(inputs).astype(np.float32)


def flow_matrix(records: Sequence[Any]) -> np.ndarray:
    """Features of many records, shape (n, len(FLOW_FEATURES)), float32 as the models use."""
    return feature_matrix(flow_inputs(records))


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

"""The worker's output records, built from plain values: one function per kind."""

import base64
from typing import Any

from streams.bins import ClosedBin
from streams.decode import Rejection
from streams.schemas import (
    ClassCount,
    Classification,
    DeadLetter,
    FlowRecord,
    TrafficClass,
    WindowRecord,
)


def window_record(link: str, b: ClosedBin, bin_s: float, now_s: float) -> WindowRecord:
    """A closed bin and the window ending with it; ``now_s`` is the processing time."""
    return WindowRecord(
        link=link,
        bin_start_s=b.start_s,
        bin_end_s=b.end_s,
        bytes=b.bytes,
        packets=b.packets,
        flows=b.flows,
        bps=b.bytes * 8 / bin_s,
        window_start_s=b.window_start_s,
        window_bins=b.window_bins,
        window_bytes=b.window_bytes,
        window_packets=b.window_packets,
        window_flows=b.window_flows,
        window_bps=b.window_bytes * 8 / (b.window_bins * bin_s),
        emitted_at_s=now_s,
        latency_s=None if b.last_arrival_s is None else max(0.0, now_s - b.last_arrival_s),
        class_mix={
            TrafficClass(c): ClassCount(bytes=nb, flows=nf) for c, (nb, nf) in b.class_mix.items()
        },
    )


def classification(record: FlowRecord, classifier: Any, emit_features: bool) -> tuple[str, bytes]:
    """The class of one flow by ``classifier`` (the models' own feature code) and its message."""
    [(cls, confidence)] = classifier.classify([record])
    features = None
    if emit_features:
        from models.features import flow_features

        features = flow_features(record)
    result = Classification(
        link=record.link,
        ts=record.ts,
        src=None if record.src is None else str(record.src),
        dst=None if record.dst is None else str(record.dst),
        sport=record.sport,
        dport=record.dport,
        proto=record.proto,
        cls=TrafficClass(cls),
        confidence=confidence,
        model_version=classifier.version,
        features=features,
    )
    return cls, result.model_dump_json(exclude_none=True).encode()


def dead_letter(
    key: bytes | None,
    value: bytes | None,
    rejection: Rejection,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    now_s: float,
) -> bytes:
    """A rejected message with its raw bytes, where it came from and why it was rejected."""
    letter = DeadLetter(
        reason=rejection.reason,
        detail=rejection.detail,
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp_ms=timestamp_ms,
        key_b64=None if key is None else base64.b64encode(key).decode(),
        raw_b64=base64.b64encode(value or b"").decode(),
        rejected_at_s=now_s,
    )
    return letter.model_dump_json().encode()

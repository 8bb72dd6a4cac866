"""Raw Kafka message -> FlowRecord, or the reason it is rejected. No I/O.

The only outside input is the wall clock, for one check: a record's event time
may be at most ``MAX_FUTURE_S`` ahead of it. A record stamped in 2099 would
otherwise push its link's watermark to 2099 and make every later record late.
Past event times are all accepted (a replay of a 2001 capture is fine), so
replays give the same results whenever they run.

A batch of messages is decoded by ``streams.batchdecode.decode_flows``, which
gives the same verdicts and reasons, faster.
"""

import time
from dataclasses import dataclass

from pydantic import ValidationError

from streams.schemas import FlowRecord, RejectReason

MAX_RECORD_BYTES = 64 * 1024
# The default of Kafka's own bound on message timestamps (message.timestamp.after.max.ms
# since Kafka 4.0): linkcast's producers stamp messages with the event time, so
# the broker already refuses what this check refuses from other producers.
MAX_FUTURE_S = 3600.0


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a raw message is not a usable FlowRecord."""

    reason: RejectReason
    detail: str


def decode_flow(
    key: bytes | None,
    value: bytes | None,
    *,
    now_s: float | None = None,
    max_future_s: float = MAX_FUTURE_S,
) -> FlowRecord | Rejection:
    """Parse and validate one message of the flows topic.

    The Kafka key must be the record's link id: it decides the partition, and
    a link split across partitions would be counted by two workers. The event
    time (``ts``) may be at most ``max_future_s`` after ``now_s`` (the wall
    clock when None); a later one is rejected with reason ``future``.
    """
    if value is None:
        return Rejection(RejectReason.JSON, "the message has no value (a tombstone?)")
    if len(value) > MAX_RECORD_BYTES:
        return Rejection(
            RejectReason.TOO_LARGE,
            f"the message is {len(value)} bytes; a flow record may have at most {MAX_RECORD_BYTES}",
        )
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection(
            RejectReason.ENCODING, f"the message is not UTF-8: {exc.reason} at byte {exc.start}"
        )
    try:
        record = FlowRecord.model_validate_json(text)
    except ValidationError as exc:
        return _rejection_of(exc)
    limit_s = (time.time() if now_s is None else now_s) + max_future_s
    if record.ts > limit_s:
        return Rejection(
            RejectReason.FUTURE,
            f"event time {record.ts} is {record.ts - limit_s + max_future_s:.0f} s ahead of "
            f"the worker's clock; at most {max_future_s:g} s is allowed (check the "
            "exporter's clock, or that ts is in epoch seconds, not milliseconds)",
        )
    expected = record.link.encode()
    if key != expected:
        shown = "missing" if key is None else repr(key[:80])
        return Rejection(
            RejectReason.KEY,
            f"the Kafka key is {shown} but the record's link is {record.link!r}; "
            "publish each record with its link id as the key",
        )
    return record


def _rejection_of(exc: ValidationError) -> Rejection:
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] in {"json_invalid", "json_type"} or (
        first["type"] == "model_type" and not first["loc"]
    ):
        return Rejection(RejectReason.JSON, f"not a JSON object: {first['msg']}")
    parts = []
    for err in errors[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "record"
        parts.append(f"{where}: {err['msg']}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return Rejection(RejectReason.SCHEMA, "; ".join(parts) + more)

"""Raw Kafka message -> FlowRecord, or the reason it is rejected. Pure, no I/O."""

from dataclasses import dataclass

from pydantic import ValidationError

from streams.schemas import FlowRecord, RejectReason

MAX_RECORD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a raw message is not a usable FlowRecord."""

    reason: RejectReason
    detail: str


def decode_flow(key: bytes | None, value: bytes | None) -> FlowRecord | Rejection:
    """Parse and validate one message of the flows topic.

    The Kafka key must be the record's link id: it decides the partition, and
    a link split across partitions would be counted by two workers.
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

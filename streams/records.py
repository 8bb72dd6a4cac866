"""The worker's output records, built from plain values: one function per kind."""

import base64
from typing import Any

import msgspec
import orjson
from pydantic import BaseModel

from streams.bins import ClosedBin, LinkBins
from streams.decode import Rejection
from streams.schemas import (
    Classification,
    DeadLetter,
    Forecast,
    HorizonForecast,
    LinkState,
    WindowRecord,
)


def window_record(link: str, b: ClosedBin, bin_s: float, now_s: float) -> Any:
    """A closed bin and the window ending with it (a ``WindowRecord``, for ``encode``);
    ``now_s`` is the processing time. One per bin closed: a msgspec struct, as the
    classifications (``test_records`` checks it against the model)."""
    return _WindowMessage(
        v=1,
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
        class_mix={c: {"bytes": nb, "flows": nf} for c, (nb, nf) in b.class_mix.items()},
    )


def link_state(
    link: str,
    bins: LinkBins,
    last_window: Any,
    forecast_error: list[dict[str, Any]],
    now_s: float,
) -> Any:
    """A ``LinkState`` (for ``encode``), with the link's last ``window_record`` if any."""
    return _LinkStateMessage(
        v=1,
        link=link,
        event_time_s=(bins.max_ts_us or 0) / 1e6,
        watermark_s=(bins.watermark_us or 0) / 1e6,
        bins_closed=bins.bins_closed,
        total_bytes=bins.total_bytes,
        total_packets=bins.total_packets,
        total_flows=bins.total_flows,
        late_records=bins.late_records,
        last_window=last_window,
        updated_at_s=now_s,
        forecast_error=forecast_error,
    )


def to_json(record: dict[str, Any]) -> bytes:
    """A record dict as a message value: compact JSON, as pydantic writes it (orjson, about
    five times faster than ``json.dumps``; its output is plain JSON all the same). numpy
    arrays are written as lists."""
    return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY)


def _message_struct(model: type[BaseModel], *, omit_none: bool = True, **types: Any) -> Any:
    """A msgspec struct with ``model``'s fields in its order, for the messages written one
    per flow or per bin (a classification: 0.45 µs, where a dict and orjson took 1.3 µs;
    building and dumping the pydantic model took about 14 % of ``bench processor``'s
    time under cProfile). ``omit_none``: None fields are left out, as
    ``model_dump_json(exclude_none=True)`` writes them (``v`` always), else written as
    null. ``types`` replaces a field's type (a nested model's struct). ``test_records``
    and ``test_forecasting`` check the messages against the models."""
    fields = model.model_fields
    return msgspec.defstruct(
        f"{model.__name__}Message",
        [
            (name, types.get(name, info.annotation))
            if name == "v" or info.is_required()
            else (name, types.get(name, info.annotation), None)
            for name, info in fields.items()
        ],
        kw_only=True,
        omit_defaults=omit_none,
        gc=False,
    )


# the types in brackets are made at run time, which mypy cannot follow
_ClassificationMessage = _message_struct(Classification)
_HorizonMessage = _message_struct(HorizonForecast)
_ForecastMessage = _message_struct(Forecast, horizons=list[_HorizonMessage])  # type: ignore[valid-type]
_WindowMessage = _message_struct(WindowRecord, omit_none=False, class_mix=dict[str, dict[str, int]])
_LinkStateMessage = _message_struct(
    LinkState,
    omit_none=False,
    last_window=_WindowMessage | None,
    forecast_error=list[dict[str, Any]],
)
#: A message struct (``window_record``, ``link_state``) as a message value.
encode = msgspec.json.Encoder().encode


def classification(
    record: Any,
    cls: str,
    confidence: float,
    model_version: str,
    features: list[float] | None = None,
) -> bytes:
    """The classification message of one flow as ``streams.batchdecode`` gives it, as the
    classifier (``model_version``) saw it.

    One per flow, so written by msgspec from a struct (see ``_message_struct``;
    ``test_records`` checks it against the model's JSON).
    """
    return encode(
        _ClassificationMessage(
            v=1,
            link=record.link,
            ts=record.ts,
            src=record.src,
            dst=record.dst,
            sport=record.sport,
            dport=record.dport,
            proto=record.proto,
            cls=cls,
            confidence=confidence,
            model_version=model_version,
            features=features,
        )
    )


def forecast(
    link: str,
    made_at_s: float,
    horizons: list[tuple[float, float, float, float]],
    model_version: str,
    latency_s: float,
) -> bytes:
    """A ``Forecast`` message: per horizon (seconds, lower, median, upper bits/s)."""
    return encode(
        _ForecastMessage(
            v=1,
            link=link,
            made_at_s=made_at_s,
            horizons=[
                _HorizonMessage(horizon_s=h, bps=mid, lower_bps=lo, upper_bps=hi)
                for h, lo, mid, hi in horizons
            ],
            model_version=model_version,
            latency_s=latency_s,
        )
    )


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

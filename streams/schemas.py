"""The records on linkcast's topics (schema v1): the Kafka contract.

Every topic carries one JSON object per message, keyed by the link id. The
JSON Schema files that outside producers validate against are generated from
these classes (``linkcast schema --out DIR``).

Times: ``*_s`` fields are epoch seconds. Event-time fields come from the
records themselves; the processing-time fields are named as such
(``emitted_at_s``, ``latency_s``) and are the only ones that differ between two
replays of the same data.
"""

from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)

LINK_PATTERN = r"^[^\s\x00-\x1f\x7f]{1,200}$"
MAX_TS_S = 4_102_444_800.0  # 2100-01-01T00:00:00Z: later timestamps are clock faults
MAX_BYTES = 2**48  # 256 TiB in one flow record is already far beyond any real link
MAX_PACKETS = 2**40

LinkId = Annotated[str, Field(pattern=LINK_PATTERN, description="link id, also the Kafka key")]

_ADDRESSES: dict[str, IPv4Address | IPv6Address] = {}  # text -> address, valid ones only
_MAX_ADDRESSES = 1 << 16


def _remembered_address(value: Any, validate: ValidatorFunctionWrapHandler) -> Any:
    """pydantic's own address validation, remembered per text: a link's flows come from
    a bounded set of hosts, and parsing each address again (Python's ipaddress) took
    about a tenth of the processor's time in a cProfile."""
    if type(value) is not str:
        return validate(value)
    known = _ADDRESSES.get(value)
    if known is None:
        known = validate(value)  # raises for an invalid one, which is not remembered
        if len(_ADDRESSES) >= _MAX_ADDRESSES:
            _ADDRESSES.clear()
        _ADDRESSES[value] = known
    return known


Address = Annotated[IPvAnyAddress, WrapValidator(_remembered_address)]


class TrafficClass(StrEnum):
    """linkcast's traffic classes."""

    WEB = "web"
    STREAMING = "streaming"
    BULK = "bulk"
    INTERACTIVE = "interactive"
    DNS = "dns"
    ATTACK = "attack"
    OTHER = "other"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FlowRecord(_Record):
    """One flow (or one packet, when ``packets == 1``) seen on a link.

    ``ts`` is the event time: the end of the flow or of this slice of it.
    ``bytes`` counts IP total lengths, ``packets`` IP packets.
    """

    link: LinkId
    ts: float = Field(ge=0, lt=MAX_TS_S, allow_inf_nan=False, description="event time, epoch s")
    bytes: int = Field(ge=0, le=MAX_BYTES)
    packets: int = Field(ge=1, le=MAX_PACKETS)
    start: float | None = Field(None, ge=0, lt=MAX_TS_S, allow_inf_nan=False)
    src: Address | None = None
    dst: Address | None = None
    sport: int | None = Field(None, ge=0, le=65535)
    dport: int | None = Field(None, ge=0, le=65535)
    proto: int | None = Field(None, ge=0, le=255, description="IP protocol number")
    tcp_flags: int | None = Field(None, ge=0, le=255, description="OR of the TCP flags seen")
    syn_count: int | None = Field(None, ge=0, le=MAX_PACKETS, description="packets with SYN set")
    fin_count: int | None = Field(None, ge=0, le=MAX_PACKETS)
    rst_count: int | None = Field(None, ge=0, le=MAX_PACKETS)
    psh_count: int | None = Field(None, ge=0, le=MAX_PACKETS)
    ack_count: int | None = Field(None, ge=0, le=MAX_PACKETS)
    urg_count: int | None = Field(None, ge=0, le=MAX_PACKETS)
    fwd_bytes: int | None = Field(None, ge=0, le=MAX_BYTES)
    bwd_bytes: int | None = Field(None, ge=0, le=MAX_BYTES)
    fwd_packets: int | None = Field(None, ge=0, le=MAX_PACKETS)
    bwd_packets: int | None = Field(None, ge=0, le=MAX_PACKETS)
    pkt_len_min: float | None = Field(None, ge=0, le=65535, allow_inf_nan=False)
    pkt_len_mean: float | None = Field(None, ge=0, le=65535, allow_inf_nan=False)
    pkt_len_max: float | None = Field(None, ge=0, le=65535, allow_inf_nan=False)
    pkt_len_std: float | None = Field(None, ge=0, le=65535, allow_inf_nan=False)
    iat_min_s: float | None = Field(None, ge=0, allow_inf_nan=False)
    iat_mean_s: float | None = Field(None, ge=0, allow_inf_nan=False)
    iat_max_s: float | None = Field(None, ge=0, allow_inf_nan=False)
    iat_std_s: float | None = Field(None, ge=0, allow_inf_nan=False)
    label: TrafficClass | None = Field(None, description="ground truth, where a dataset has it")

    @model_validator(mode="after")
    def _start_not_after_end(self) -> "FlowRecord":
        if self.start is not None and self.start > self.ts:
            raise ValueError(f"start ({self.start}) is after ts ({self.ts})")
        return self


class ClassCount(_Record):
    """The bytes and flows of one traffic class in a bin."""

    bytes: int = Field(ge=0)
    flows: int = Field(ge=0)


class WindowRecord(_Record):
    """A closed bin of one link and the sliding window that ends with it.

    The bin is ``[bin_start_s, bin_end_s)``; the window is the last
    ``window_bins`` bins up to and including this one (fewer while the link is
    new), ``[window_start_s, bin_end_s)``. Rates are averages over those spans.
    """

    v: Literal[1] = 1
    link: LinkId
    bin_start_s: float
    bin_end_s: float
    bytes: int = Field(ge=0)
    packets: int = Field(ge=0)
    flows: int = Field(ge=0)
    bps: float = Field(ge=0, description="bits per second over the bin")
    window_start_s: float
    window_bins: int = Field(ge=1)
    window_bytes: int = Field(ge=0)
    window_packets: int = Field(ge=0)
    window_flows: int = Field(ge=0)
    window_bps: float = Field(ge=0, description="bits per second over the window")
    emitted_at_s: float = Field(description="processing time the bin closed")
    latency_s: float | None = Field(
        None,
        description="processing time from the bin's last record to its close (None: empty bin)",
    )
    class_mix: dict[TrafficClass, ClassCount] = Field(
        default_factory=dict,
        description="the bin's bytes and flows per class, as the classifier saw its flows "
        "(empty when classification is off or the bin is empty)",
    )


class HorizonError(_Record):
    """How one horizon's forecasts of a link have done, as their bins closed (recent-weighted)."""

    horizon_s: float = Field(gt=0)
    scored: int = Field(ge=0, description="forecasts scored so far")
    mae_bps: float = Field(ge=0, description="mean absolute error, exponentially weighted")
    wape: float | None = Field(None, ge=0, description="mae_bps over the mean actual bits/s")
    coverage: float = Field(ge=0, le=1, description="share of actual values inside the interval")


class LinkState(_Record):
    """The latest state of one link, on the compacted link-state topic."""

    v: Literal[1] = 1
    link: LinkId
    event_time_s: float = Field(description="largest event time seen on the link")
    watermark_s: float = Field(description="bins ending at or before this are closed")
    bins_closed: int = Field(ge=0)
    total_bytes: int = Field(ge=0, description="bytes in all closed bins")
    total_packets: int = Field(ge=0)
    total_flows: int = Field(ge=0)
    late_records: int = Field(ge=0, description="records rejected as later than the lateness")
    last_window: WindowRecord | None = None
    updated_at_s: float = Field(description="processing time of this update")
    forecast_error: list[HorizonError] = Field(
        default_factory=list, description="per horizon, how the link's forecasts have done"
    )


class RejectReason(StrEnum):
    """Why a record went to the dead-letter topic."""

    TOO_LARGE = "too_large"
    ENCODING = "encoding"
    JSON = "json"
    SCHEMA = "schema"
    KEY = "key"
    LATE = "late"
    FUTURE = "future"


class DeadLetter(_Record):
    """A rejected input record, with enough to find, understand and replay it."""

    v: Literal[1] = 1
    reason: RejectReason
    detail: str = Field(description="what was wrong, for a person")
    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    timestamp_ms: int | None = Field(None, description="the source message's Kafka timestamp")
    key_b64: str | None = Field(None, description="the source message's key, base64")
    raw_b64: str = Field(description="the source message's value, base64")
    rejected_at_s: float


class Classification(_Record):
    """The traffic class of one flow, as the classifier saw it."""

    v: Literal[1] = 1
    link: LinkId
    ts: float
    src: str | None = None
    dst: str | None = None
    sport: int | None = None
    dport: int | None = None
    proto: int | None = None
    cls: TrafficClass
    confidence: float = Field(ge=0, le=1)
    model_version: str
    latency_s: float | None = None
    features: list[float] | None = Field(
        None,
        description="the classifier's input features (models.features.FLOW_FEATURES order); "
        "only with LINKCAST_CLASSIFY_EMIT_FEATURES=true, for debugging",
    )


class HorizonForecast(_Record):
    """Forecast bandwidth at one horizon, with its prediction interval."""

    horizon_s: float = Field(gt=0)
    bps: float = Field(ge=0)
    lower_bps: float = Field(ge=0)
    upper_bps: float = Field(ge=0)


class Forecast(_Record):
    """A link's bandwidth forecast made when the bin ending at ``made_at_s`` closed."""

    v: Literal[1] = 1
    link: LinkId
    made_at_s: float
    horizons: list[HorizonForecast]
    model_version: str
    latency_s: float | None = None


class Alert(_Record):
    """An alert raised or cleared on a link; ``id`` is the same for both."""

    v: Literal[1] = 1
    id: str
    link: LinkId
    state: Literal["raised", "cleared"]
    severity: Literal["info", "warning", "critical"]
    reason: str
    evidence: dict[str, float]
    ts: float
    model_version: str | None = None


class ModelAnnouncement(_Record):
    """A model version made current; workers and API replicas load it."""

    v: Literal[1] = 1
    kind: Literal["classifier", "forecaster"]
    version: str = Field(
        pattern=r"^\d{8}T\d{6}Z-[0-9a-f]{8}$", description="a registry version name"
    )
    path: str
    metrics: dict[str, float]


#: The schema of each topic's values, by the topic's role (see streams.topics.Topics).
TOPIC_RECORDS: dict[str, type[BaseModel]] = {
    "flows": FlowRecord,
    "windows": WindowRecord,
    "classifications": Classification,
    "forecasts": Forecast,
    "alerts": Alert,
    "link-state": LinkState,
    "deadletter": DeadLetter,
    "models": ModelAnnouncement,
}

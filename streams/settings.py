"""Settings of the Kafka contract and of the stream worker.

Each field reads ``LINKCAST_<FIELD>`` from the environment, once, when the
settings object is built. Nothing else in linkcast reads the environment.
"""

import json
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TOPIC_PREFIX_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,100}$"


class KafkaSettings(BaseSettings):
    """Where the cluster is and how linkcast's topics are laid out.

    Shared by every deployable (worker, API, producers) through subclassing,
    so a fact such as the topic prefix is defined once.
    """

    model_config = SettingsConfigDict(env_prefix="LINKCAST_", frozen=True, extra="ignore")

    kafka_bootstrap: str = Field("127.0.0.1:9092", min_length=1)
    topic_prefix: str = Field("linkcast", pattern=TOPIC_PREFIX_PATTERN)
    partitions: int = Field(4, ge=1, le=1024, description="partitions of every keyed topic")
    replication: int = Field(1, ge=1, le=5, description="replication factor of every topic")
    broker_timeout_s: float = Field(30.0, gt=0, description="how long to wait for the cluster")
    broker_outage_s: float = Field(
        300.0,
        gt=0,
        description="how long a producer waits for a cluster that stops answering mid-run",
    )
    flows_retention_bytes: int = Field(
        1 << 30,
        ge=1 << 20,
        description="bytes the flows topic keeps per partition (it is not limited by time)",
    )
    link_capacities_file: Path | None = Field(
        None,
        description='JSON {"<link>": <capacity in bits/s>, ...}: utilisation and capacity '
        "alerts where known (the worker and the API read the same file)",
    )
    models_dir: Path = Field(
        Path(".linkcast/models"),
        description="model registry; without a current version, the packaged models are used",
    )


class StreamSettings(KafkaSettings):
    """Stream worker settings; each field reads LINKCAST_<FIELD>."""

    bin_s: float = Field(1.0, gt=0, le=60, description="width of a per-link time bin")
    window_bins: int = Field(10, ge=2, le=3600, description="bins in the sliding window")
    lateness_s: float = Field(2.0, ge=0, le=3600, description="allowed event-time lateness")
    idle_close_after_s: float = Field(
        3.0,
        gt=0,
        description="processing-time silence after which a link's bins close on the timer",
    )
    tick_interval_s: float = Field(1.0, gt=0, le=60, description="period of the idle timer")
    link_expire_after_s: float | None = Field(
        3600.0,
        gt=0,
        description="processing-time silence after which a link is dropped from state "
        "(None: never); it starts afresh if it comes back",
    )
    session_timeout_s: float = Field(
        30.0,
        ge=6,
        le=300,
        description="a worker silent this long is dropped from the group and its partitions "
        "go to the others (the broker allows 6 s and up)",
    )
    checkpoint_s: float | None = Field(
        None,
        gt=0,
        le=60,
        description="how often a worker stores the link states that changed and commits the "
        "records they hold (under exactly_once: one transaction per partition); None: 5 s "
        "with the direct flows reader, else 1 s",
    )
    store: Literal["rocksdb://", "memory://"] = "rocksdb://"
    data_dir: Path = Path(".linkcast/worker")
    worker_host: str = "127.0.0.1"
    worker_port: int = Field(6066, ge=0, le=65535, description="Faust web port (0: any)")
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    flows_reader: Literal["auto", "faust", "direct"] = Field(
        "auto",
        description="what reads the flows topic: a plain aiokafka consumer beside the Faust "
        "agent (direct, streams.flowsreader; at_least_once only), or the agent itself "
        "(faust); auto: direct under at_least_once, faust under exactly_once",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    classify: bool = Field(True, description="classify every flow with the current classifier")
    alert_attack_share: float = Field(
        0.5, gt=0, le=1, description="share of a bin's bytes classified attack that raises an alert"
    )
    alert_bins: int = Field(
        3, ge=1, le=3600, description="consecutive bins a condition must hold to raise or clear"
    )
    forecast: bool = Field(True, description="forecast each link's bandwidth on every bin close")
    forecast_horizons_s: tuple[float, ...] | None = Field(
        None,
        description="horizons to publish and score, in seconds, as a JSON list such as "
        "[1, 60]; each must be one the forecaster makes (the packaged one: 1, 10 and 60 "
        "bins ahead); None: all of the forecaster's",
    )
    classify_emit_features: bool = Field(
        False, description="add each flow's classifier features to its classification (debugging)"
    )

    @field_validator("forecast_horizons_s", mode="before")
    @classmethod
    def _horizons_from_text(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError(
                f"write the horizons as a JSON list of seconds, such as [1, 60]: got {value!r}"
            ) from None

    @field_validator("forecast_horizons_s")
    @classmethod
    def _horizons_listed_once(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("list at least one horizon, or leave the variable unset for all")
        if any(not 0 < h < float("inf") for h in value):
            raise ValueError(f"horizons are seconds ahead, above 0: got {list(value)}")
        if len(set(value)) != len(value):
            raise ValueError(f"a horizon is listed twice: {list(value)}")
        return tuple(sorted(value))

    @model_validator(mode="after")
    def _direct_reader_without_transactions(self) -> "StreamSettings":
        if self.flows_reader == "direct" and self.processing_guarantee == "exactly_once":
            raise ValueError(
                "LINKCAST_FLOWS_READER=direct commits flows offsets outside Kafka transactions: "
                "use it with LINKCAST_PROCESSING_GUARANTEE=at_least_once, or leave "
                "LINKCAST_FLOWS_READER unset (auto) or faust for exactly_once"
            )
        return self

    @model_validator(mode="after")
    def _transactions_within_their_timeout(self) -> "StreamSettings":
        if self.processing_guarantee == "exactly_once" and (self.checkpoint_s or 0) > 30:
            raise ValueError(
                "under exactly_once a checkpoint is a Kafka transaction, which the broker "
                "aborts after 60 s (the producer's transaction timeout): set "
                f"LINKCAST_CHECKPOINT_S to 30 or less (got {self.checkpoint_s:g})"
            )
        return self

    @property
    def checkpoint_interval_s(self) -> float:
        """``checkpoint_s``, or its default: 5 s with the direct flows reader, else 1 s.

        A link that closes a bin every second changes every second, and each
        store writes its whole state (up to about 10 KB with a full forecast
        history) to RocksDB and the changelog: at 10,000 such links, 100 MB/s at
        one checkpoint a second. With the direct reader (at_least_once) outputs
        do not wait for a checkpoint, so it comes every 5 s: a fifth of the
        writes, and up to 5 s more to read again after a crash. Under
        exactly_once committed readers see outputs only at a checkpoint, so it
        stays at 1 s; with the Faust reader at 5 s a worker stalled in CI
        (test_scale_out[faust]: each partition's next records never came, and
        the worker read its partitions again every 5 s), so that too stays at 1 s.
        """
        if self.checkpoint_s is not None:
            return self.checkpoint_s
        return 5.0 if self.reads_flows_directly else 1.0

    @property
    def reads_flows_directly(self) -> bool:
        """Whether the worker reads the flows topic with its own consumer (flows_reader)."""
        if self.flows_reader == "auto":
            return self.processing_guarantee == "at_least_once"
        return self.flows_reader == "direct"

    @property
    def app_id(self) -> str:
        """Faust app id, also the consumer group: one group per topic prefix."""
        return f"{self.topic_prefix}-worker"

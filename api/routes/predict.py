"""POST /v1/predict/bandwidth and POST /v1/classify: the stream's models, on demand.

Both use the models the stream uses (the current versions, swapped when
announced) and the same feature code (``models.features``), and need the
``predict`` scope. They answer from the models alone, so they work while the
view is still reading (no 503).

Bandwidth takes a link's recent bins, oldest first, or the body of the older
QoS predictor (``packet_rate``, ``bandwidth_util`` in Mbit/s, ``rtt_variance``;
one value per second), and forecasts every horizon of the model with its 80 %
interval. A series shorter than the model's window is extended back with its
oldest bin, and the answer says how many bins were added; a longer one is
used from its newest ``window_bins`` bins.
"""

import time
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body, HTTPException
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from api.context import GUARDED, ApiContext
from api.predictions import Models
from api.schemas import Problem
from models.classes import CLASSES
from models.inference import best_class
from models.registry import Registry
from streams.schemas import MAX_TS_S, FlowRecord, HorizonForecast, TrafficClass

#: What a prediction may answer besides 200 and 422.
ERRORS = {
    **GUARDED,
    400: {"model": Problem, "description": "the body is not JSON"},
    413: {"model": Problem, "description": "the request body is too large"},
    415: {"model": Problem, "description": "the body was not sent as application/json"},
}
MAX_BINS = 3600
MAX_FLOWS = 1000  # a body of more than this many full records would pass 1 MiB (413)
Rate = Annotated[float, Field(ge=0, le=1e15, allow_inf_nan=False)]


class Bin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start_s: float = Field(ge=0, lt=MAX_TS_S, allow_inf_nan=False, description="bin start, epoch s")
    bps: Rate = Field(description="bits per second over the bin")
    packets: int | None = Field(None, ge=0, le=2**40)
    flows: int | None = Field(None, ge=0, le=2**40)


class BandwidthRequest(BaseModel):
    """A link's recent bins, oldest first, all of width ``bin_s``."""

    model_config = ConfigDict(extra="forbid")

    bin_s: float = Field(1.0, gt=0, le=3600, allow_inf_nan=False)
    bins: list[Bin] = Field(min_length=1, max_length=MAX_BINS)


class QosRequest(BaseModel):
    """The older QoS predictor's body: one value per second, the newest last."""

    model_config = ConfigDict(extra="forbid")

    packet_rate: list[Rate] = Field(min_length=1, max_length=MAX_BINS, description="packets/s")
    bandwidth_util: list[Rate] = Field(min_length=1, max_length=MAX_BINS, description="Mbit/s")
    rtt_variance: list[Rate] = Field(
        min_length=1,
        max_length=MAX_BINS,
        description="accepted for compatibility; not a model input",
    )  # packet_rate neither: the model takes packets only with flow counts beside them


class BandwidthAnswer(BaseModel):
    model_version: str
    bin_s: float
    made_at_s: float = Field(description="end of the newest bin given")
    horizons: list[HorizonForecast]
    padded_bins: int = Field(description="bins added before the oldest given to fill the window")


class QosAnswer(BaseModel):
    predicted_bandwidth: float = Field(description="median forecast one second ahead")
    unit: str = "Mbps"


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flows: list[FlowRecord] = Field(min_length=1, max_length=MAX_FLOWS)


class FlowClass(BaseModel):
    cls: TrafficClass
    confidence: float
    probabilities: dict[str, float]


class ClassifyAnswer(BaseModel):
    model_version: str
    classifications: list[FlowClass]


BandwidthBody = Annotated[
    Annotated[BandwidthRequest, Tag("bins")] | Annotated[QosRequest, Tag("qos")],
    Discriminator(lambda body: "qos" if _has(body, "bandwidth_util") else "bins"),
]
ClassifyBody = Annotated[
    Annotated[ClassifyRequest, Tag("many")] | Annotated[FlowRecord, Tag("one")],
    Discriminator(lambda body: "many" if _has(body, "flows") else "one"),
]


def _has(body: Any, key: str) -> bool:
    """Whether a body (JSON object, or a model already made) has ``key``."""
    if isinstance(body, dict):
        return key in body
    return hasattr(body, key)


def router(ctx: ApiContext) -> APIRouter:
    routes = APIRouter(tags=["predict"], dependencies=[ctx.guard.requires("predict")])
    models = Models(Registry(ctx.settings.models_dir), ctx.view.state.models)

    @routes.post(
        "/v1/predict/bandwidth", response_model=BandwidthAnswer | QosAnswer, responses=ERRORS
    )
    def predict_bandwidth(
        body: Annotated[BandwidthBody, Body()],
    ) -> BandwidthAnswer | QosAnswer:
        """Forecast a link's bandwidth from its recent bins (or the older QoS body)."""
        forecaster = models.forecaster()
        if isinstance(body, QosRequest):
            lengths = {len(body.packet_rate), len(body.bandwidth_util), len(body.rtt_variance)}
            if len(lengths) != 1:
                raise HTTPException(
                    422,
                    "packet_rate, bandwidth_util and rtt_variance must have "
                    "one value per second each: their lengths differ",
                )
            n = len(body.bandwidth_util)
            now = float(int(time.time()))
            bps = np.asarray(body.bandwidth_util) * 1e6
            starts = now - n + np.arange(n, dtype=np.float64)
            # Packet rates alone (no flow counts) are not an input the model knows: unused.
            forecast, _ = _forecast(forecaster, bps, starts, 1.0, None, None)
            return QosAnswer(predicted_bandwidth=float(forecast[0, 1]) / 1e6)
        starts = np.array([b.start_s for b in body.bins])
        if not np.allclose(np.diff(starts), body.bin_s, rtol=0, atol=1e-6):
            raise HTTPException(
                422,
                f"bins must be consecutive, oldest first: each starting bin_s ({body.bin_s} s) "
                "after the one before; send a silent bin as bps 0",
            )
        counts = {(b.packets is not None, b.flows is not None) for b in body.bins}
        if len(counts) > 1 or counts in ({(True, False)}, {(False, True)}):
            raise HTTPException(
                422, "give packets and flows for every bin, or for none (then they are unknown)"
            )
        known = counts == {(True, True)}
        forecast, padded = _forecast(
            forecaster,
            np.array([b.bps for b in body.bins]),
            starts,
            body.bin_s,
            np.array([b.packets for b in body.bins], dtype=float) if known else None,
            np.array([b.flows for b in body.bins], dtype=float) if known else None,
        )
        return BandwidthAnswer(
            model_version=forecaster.version,
            bin_s=body.bin_s,
            made_at_s=float(starts[-1] + body.bin_s),
            horizons=[
                HorizonForecast(
                    horizon_s=h * body.bin_s, lower_bps=row[0], bps=row[1], upper_bps=row[2]
                )
                for h, row in zip(forecaster.horizons, forecast.tolist(), strict=True)
            ],
            padded_bins=padded,
        )

    @routes.post("/v1/classify", response_model=ClassifyAnswer, responses=ERRORS)
    def classify(body: Annotated[ClassifyBody, Body()]) -> ClassifyAnswer:
        """The traffic class of one flow record, or of ``{"flows": [...]}`` (at most 1,000)."""
        classifier = models.classifier()
        flows = body.flows if isinstance(body, ClassifyRequest) else [body]
        from models.features import flow_matrix

        proba = classifier.tree.proba(flow_matrix(flows))
        return ClassifyAnswer(
            model_version=classifier.version,
            classifications=[
                FlowClass(
                    cls=TrafficClass(best_class(p)),
                    confidence=float(np.max(p)),
                    probabilities={c: float(v) for c, v in zip(CLASSES, p, strict=True) if v > 0},
                )
                for p in proba
            ],
        )

    return routes


def _forecast(
    forecaster: Any,
    bps: np.ndarray,
    starts: np.ndarray,
    bin_s: float,
    packets: np.ndarray | None,
    flows: np.ndarray | None,
) -> tuple[np.ndarray, int]:
    """(H, 3) lower/median/upper bits per second, and how many bins were padded."""
    t = forecaster.window_bins
    bps, starts = bps[-t:], starts[-t:]
    packets = None if packets is None else packets[-t:]
    flows = None if flows is None else flows[-t:]
    pad = t - len(bps)
    if pad:
        bps = np.concatenate([np.full(pad, bps[0]), bps])
        starts = np.concatenate([starts[0] - bin_s * np.arange(pad, 0, -1), starts])
        packets = None if packets is None else np.concatenate([np.full(pad, packets[0]), packets])
        flows = None if flows is None else np.concatenate([np.full(pad, flows[0]), flows])
    out = forecaster.forecast(
        bps[None, :],
        starts[None, :],
        bin_s,
        packets=None if packets is None else packets[None, :],
        flows=None if flows is None else flows[None, :],
    )
    return out[0], pad

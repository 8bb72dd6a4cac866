"""The one feature code path: flow features and forecaster inputs."""

import numpy as np
import pytest

from models.classes import CLASSES
from models.features import (
    FLOW_FEATURES,
    MISSING,
    SERIES_CHANNELS,
    flow_features,
    flow_matrix,
    series_inputs,
    series_targets,
    to_bps,
)
from streams.schemas import FlowRecord, TrafficClass


def test_model_classes_are_the_stream_classes_in_order():
    assert list(CLASSES) == [c.value for c in TrafficClass]


def _record(**extra: object) -> FlowRecord:
    return FlowRecord.model_validate(
        {"link": "l", "ts": 110.0, "start": 100.0, "bytes": 10_000, "packets": 20, **extra}
    )


def test_features_of_a_record_and_of_its_dict_are_the_same():
    record = _record(
        sport=51000,
        dport=443,
        proto=6,
        syn_count=1,
        fwd_bytes=2_000,
        pkt_len_mean=500.0,
        iat_mean_s=0.5,
    )
    assert flow_features(record) == flow_features(record.model_dump())


def test_flow_features_values_by_name():
    f = dict(
        zip(
            FLOW_FEATURES,
            flow_features(_record(sport=51000, dport=443, proto=6, syn_count=2, fwd_bytes=2_500)),
            strict=True,
        )
    )
    assert f["mean_packet_bytes"] == 500.0
    assert f["duration_s"] == 10.0
    assert f["log_bps"] == pytest.approx(np.log1p(8 * 10_000 / 10))
    assert f["low_port"] == 443.0
    assert f["syn_share"] == 0.1
    assert f["fwd_byte_share"] == 0.25
    assert f["fin_share"] == MISSING  # not in the record: unknown, not zero
    assert f["iat_mean_s"] == MISSING


def test_a_record_without_start_has_unknown_duration_and_rates():
    f = dict(zip(FLOW_FEATURES, flow_features(_record(start=None)), strict=True))
    assert f["duration_s"] == f["log_bps"] == f["log_pps"] == MISSING
    single = dict(zip(FLOW_FEATURES, flow_features(_record(start=110.0)), strict=True))
    assert single["duration_s"] == 0.0
    assert single["log_bps"] == MISSING


def test_flow_matrix_is_float32_rows_of_flow_features():
    records = [_record(), _record(dport=53, proto=17)]
    x = flow_matrix(records)
    assert x.dtype == np.float32
    assert x.shape == (2, len(FLOW_FEATURES))
    assert x[1].tolist() == np.float32(flow_features(records[1])).tolist()
    assert flow_matrix([]).shape == (0, len(FLOW_FEATURES))


def test_series_inputs_are_scale_free():
    rng = np.random.default_rng(1)
    bps = rng.uniform(1e6, 2e6, size=(3, 12))
    starts = np.arange(12)[None, :] + np.zeros((3, 1))
    x1, level1 = series_inputs(bps, starts, 1.0)
    x2, level2 = series_inputs(bps * 1000, starts, 1.0)
    assert x1.shape == (3, 12, len(SERIES_CHANNELS))
    np.testing.assert_allclose(x1[:, :, 0], x2[:, :, 0], atol=1e-3)
    np.testing.assert_allclose(level2 - level1, np.log(1000), atol=1e-3)
    assert np.all(x1[:, :, SERIES_CHANNELS.index("counts_known")] == 0)


def test_series_inputs_with_counts_and_class_mix():
    n, t = 2, 5
    mix = np.zeros((n, t, len(CLASSES)))
    mix[:, :, CLASSES.index("web")] = 300
    mix[:, :, CLASSES.index("dns")] = 100
    x, _ = series_inputs(
        np.full((n, t), 8e3),
        np.zeros((n, t)),
        1.0,
        packets=np.ones((n, t)),
        flows=np.ones((n, t)),
        class_bytes=mix,
    )
    assert np.all(x[:, :, SERIES_CHANNELS.index("counts_known")] == 1)
    assert np.allclose(x[:, :, SERIES_CHANNELS.index("mix_web")], 0.75)
    assert np.allclose(x[:, :, SERIES_CHANNELS.index("mix_dns")], 0.25)


def test_targets_and_to_bps_invert_each_other():
    level = np.array([10.0, 3.0])
    future = np.array([[1e5, 2e5], [0.0, 30.0]])
    back = to_bps(series_targets(future, level), level)
    np.testing.assert_allclose(back, future, rtol=1e-9, atol=1e-9)
    assert to_bps(np.array([[-50.0]]), np.array([0.0]))[0, 0] == 0.0  # never negative

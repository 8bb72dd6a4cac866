"""Output records written without their pydantic models say what the models would."""

import json

import pytest

from models.features import flow_features
from streams.batchdecode import decode_flows
from streams.bins import BinConfig, ClosedBin, LinkBins
from streams.records import classification, encode, link_state, window_record
from streams.schemas import Classification, FlowRecord, LinkState, WindowRecord

RECORDS = [
    {"link": "edge-1", "ts": 1_767_225_600.25, "bytes": 1500, "packets": 3},
    {
        "link": "edge-2",
        "ts": 1_767_225_601.0,
        "start": 1_767_225_600.5,
        "bytes": 9_000_000_000,
        "packets": 7,
        "src": "10.0.0.1",
        "dst": "2001:0db8:0000:0000:0000:0000:0000:0001",
        "sport": 443,
        "dport": 51234,
        "proto": 6,
        "syn_count": 1,
    },
    {"link": "e", "ts": 0.000001, "bytes": 0, "packets": 1, "dst": "::1", "proto": 17},
]


@pytest.mark.parametrize("fields", RECORDS)
@pytest.mark.parametrize("emit_features", [False, True])
@pytest.mark.parametrize("answer", [("web", 1.0), ("dns", 0.3333333333333333), ("attack", 1e-05)])
def test_a_classification_message_is_what_its_model_would_write(fields, emit_features, answer):
    record = FlowRecord.model_validate(fields)
    flows = decode_flows([(record.link.encode(), json.dumps(fields).encode())], now_s=2e9)
    [decoded] = flows.records
    features = flow_features(record) if emit_features else None
    message = classification(decoded, *answer, "tree-1", features)
    parsed = Classification.model_validate_json(message)  # valid, no unknown field
    written = json.loads(message)
    expected = json.loads(parsed.model_dump_json(exclude_none=True))
    assert written == expected
    assert list(written) == list(expected)  # the same field order
    assert written["ts"] == record.ts
    if "dst" in fields:
        assert written["dst"] == str(record.dst)  # the address in its normal form
    assert ("features" in written) == emit_features


def as_model_writes(model_class, written: bytes) -> tuple[dict, dict]:
    """What was written, and what the model makes of it and writes back."""
    parsed = model_class.model_validate_json(written)  # valid, no unknown field
    return json.loads(written), json.loads(parsed.model_dump_json())


BINS = [
    ClosedBin(
        7, 7.0, 8.0, 1500, 3, 2, 0.0, 8, 9000, 30, 11, 1000.25, {"web": (1000, 1), "dns": (500, 1)}
    ),
    ClosedBin(8, 8.0, 9.0, 0, 0, 0, 0.5, 10, 0, 0, 0, None, {}),
]


@pytest.mark.parametrize("b", BINS)
def test_a_window_record_is_what_its_model_would_write(b):
    window = window_record("edge-1", b, 1.0, 1000.5)
    written, expected = as_model_writes(WindowRecord, encode(window))
    assert written == expected
    assert list(written) == list(expected)
    assert list(written["class_mix"]) == list(b.class_mix)


@pytest.mark.parametrize("last_window", [None, window_record("edge-1", BINS[0], 1.0, 1000.5)])
def test_a_link_state_is_what_its_model_would_write(last_window):
    bins = LinkBins(BinConfig.of(1.0, 2.0, 10))
    bins.add(1_767_225_600.5, 100, 1, 1, arrival_s=1000.0, cls="web")
    errors = [
        {"horizon_s": 1.0, "scored": 3, "mae_bps": 20.5, "wape": None, "coverage": 0.5},
        {"horizon_s": 10.0, "scored": 1, "mae_bps": 0.0, "wape": 0.0, "coverage": 1.0},
    ]
    state = link_state("edge-1", bins, last_window, errors, 1001.0)
    written, expected = as_model_writes(LinkState, encode(state))
    assert written == expected
    assert list(written) == list(expected)
    assert written["event_time_s"] == 1_767_225_600.5

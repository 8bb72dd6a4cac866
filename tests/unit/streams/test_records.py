"""Output records written without their pydantic models say what the models would."""

import json

import pytest

from streams.records import classification
from streams.schemas import Classification, FlowRecord

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
    message = classification(record, *answer, "tree-test-1", emit_features)
    parsed = Classification.model_validate_json(message)  # valid, no unknown field
    written = json.loads(message)
    expected = json.loads(parsed.model_dump_json(exclude_none=True))
    assert written == expected
    assert list(written) == list(expected)  # the same field order
    if "dst" in fields:
        assert written["dst"] == str(record.dst)  # the address in its normal form
    assert ("features" in written) == emit_features

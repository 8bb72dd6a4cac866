"""The worker's batch decoder gives exactly what ``decode_flow`` (pydantic) gives.

``decode_flows`` takes most messages past pydantic (streams.decode); every
message it does not recognise as plainly valid goes to ``decode_flow``. So for
any batch, message by message, it must accept the same flows with the same
values and reject the rest with the same reason and detail.
"""

import json
import math
import string

import annotated_types
import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streams.batchdecode
from streams.batchdecode import CROSS_FIELD_CHECKS, NUMBER_FIELDS, _bounds, decode_flows
from streams.decode import MAX_RECORD_BYTES, Rejection, decode_flow
from streams.schemas import FlowRecord

NOW_S = 1_767_225_600.0  # 2026-01-01
GOOD = {
    "link": "edge-1",
    "ts": NOW_S - 10.0,
    "bytes": 1500,
    "packets": 2,
    "start": NOW_S - 10.5,
    "src": "10.0.0.1",
    "dst": "10.0.0.2",
    "sport": 51000,
    "dport": 443,
    "proto": 6,
    "syn_count": 1,
    "pkt_len_mean": 750.0,
    "iat_mean_s": 0.25,
    "label": "web",
}


def one_by_one(batch: list[tuple[bytes | None, bytes | None]]) -> list[FlowRecord | Rejection]:
    return [decode_flow(key, value, now_s=NOW_S) for key, value in batch]


def assert_agrees(batch: list[tuple[bytes | None, bytes | None]]) -> None:
    flows = decode_flows(batch, now_s=NOW_S)
    expected = one_by_one(batch)
    accepted = [i for i, r in enumerate(expected) if isinstance(r, FlowRecord)]
    assert flows.positions == accepted
    assert flows.rejected == [(i, r) for i, r in enumerate(expected) if isinstance(r, Rejection)]
    assert flows.numbers.shape == (len(accepted), len(NUMBER_FIELDS))
    for row, i in enumerate(accepted):
        record = expected[i]
        assert isinstance(record, FlowRecord)
        assert msgspec.structs.asdict(flows.records[row]) == record.model_dump(mode="json")
        numbers = [getattr(record, name) for name in NUMBER_FIELDS]
        assert flows.numbers[row].tolist() == pytest.approx(
            [math.nan if n is None else float(n) for n in numbers], nan_ok=True, rel=0, abs=0
        )


def encode(fields: dict) -> bytes:
    return json.dumps(fields).encode()


@pytest.mark.parametrize(
    "value",
    [
        encode(GOOD),
        encode({"link": "edge-1", "ts": NOW_S, "bytes": 0, "packets": 1}),
        encode({**GOOD, "ts": int(NOW_S)}),  # an integer where a float goes
        encode({**GOOD, "bytes": 1500.0}),  # a float with no fraction where an int goes
        encode({**GOOD, "bytes": 1500.5}),
        encode({**GOOD, "bytes": "1500"}),  # a number as text
        encode({**GOOD, "bytes": True}),
        encode({**GOOD, "sport": None, "label": None}),  # null: unknown
        encode({**GOOD, "dst": "2001:0db8:0000::0001"}),  # an address not in its normal form
        encode({**GOOD, "src": "10.0.0.300"}),
        encode({**GOOD, "src": 167772161}),
        encode({**GOOD, "label": "cats"}),
        encode({**GOOD, "link": "edge 1"}),
        encode({**GOOD, "colour": "red"}),
        encode({k: v for k, v in GOOD.items() if k != "packets"}),
        encode({**GOOD, "start": GOOD["ts"] + 1}),
        encode({**GOOD, "ts": NOW_S + 3601}),  # ahead of the clock
        encode({**GOOD, "ts": 4_200_000_000.0}),  # after 2100
        encode({**GOOD, "bytes": 2**48 + 1}),
        encode({**GOOD, "bytes": 2**64}),
        encode({**GOOD, "iat_mean_s": 1e308}),
        encode(GOOD).replace(b'"iat_mean_s": 0.25', b'"iat_mean_s": 1e999'),  # infinite
        encode(GOOD).replace(b'"bytes": 1500', b'"bytes": 1500, "bytes": 9'),  # twice
        encode(GOOD).replace(b"edge-1", b"edge-\\u0031"),  # an escaped character
        encode(GOOD).replace(b"edge-1", b"edge-\\ud800"),  # a lone surrogate
        encode(GOOD).replace(b'"web"', b'"w\xffb"'),  # a byte that is not UTF-8, in a string
        encode(GOOD).replace(b'"label"', b'"l\xc3bel"'),  # and in a field's name
        encode(GOOD).replace(b"edge-1", b"edge-\xed\xa0\x80"),  # an encoded surrogate
        encode(GOOD)[:-1],
        b"[1, 2]",
        b"\xff" + encode(GOOD),
        encode({**GOOD, "pad": "x" * MAX_RECORD_BYTES}),
        None,
    ],
)
@pytest.mark.parametrize("key", [b"edge-1", b"edge-2", None])
def test_each_kind_of_message_gets_the_verdict_pydantic_gives(value, key):
    assert_agrees([(key, value), (b"edge-1", encode(GOOD))])


json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.integers(-3, 70_000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(0, 5e9),
    st.text(max_size=8),
    st.sampled_from(["10.0.0.1", "::1", "2001:0db8::1", "dns", "web", "1500", "edge-1"]),
    st.lists(st.integers(), max_size=2),
)
field_names = st.sampled_from([*FlowRecord.model_fields, "colour"])


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes | None, bytes | None]:
    """A flows message: mostly valid, often with a field or two changed."""
    fields = dict(GOOD)
    for name in draw(st.lists(field_names, max_size=3)):
        if draw(st.booleans()):
            fields[name] = draw(json_values)
        else:
            fields.pop(name, None)
    value = encode(fields)
    if draw(st.integers(0, 9)) == 0:
        value = value[: draw(st.integers(0, len(value)))]
    if draw(st.integers(0, 9)) == 0:  # raw bytes spliced in anywhere, in a string or not
        at = draw(st.integers(0, len(value)))
        value = value[:at] + draw(st.binary(min_size=1, max_size=3)) + value[at:]
    key = draw(st.sampled_from([b"edge-1", b"edge-1", b"edge-1", b"edge-2", None]))
    return key, value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages(), min_size=1, max_size=20))
def test_any_batch_gets_the_verdicts_pydantic_gives(batch):
    assert_agrees(batch)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(string.printable, max_size=6), json_values, max_size=4))
def test_any_json_object_gets_the_verdict_pydantic_gives(fields):
    assert_agrees([(b"edge-1", encode({**GOOD, **fields})), (b"edge-1", encode(fields))])


def test_plain_valid_flows_never_reach_pydantic(monkeypatch):
    """The point of the batch decoder: a batch of valid flows is decoded without it."""
    called = []
    monkeypatch.setattr(streams.batchdecode, "decode_flow", lambda *a, **k: called.append(a))
    batch = [(b"edge-1", encode({**GOOD, "ts": GOOD["ts"] + k / 10})) for k in range(100)]
    flows = decode_flows(batch, now_s=NOW_S)
    assert len(flows.records) == 100
    assert called == []


def test_the_fast_path_knows_every_cross_field_check_of_flow_record():
    """A new model validator on FlowRecord must be checked in decode_flows too."""
    assert set(FlowRecord.__pydantic_decorators__.model_validators) == CROSS_FIELD_CHECKS
    assert not FlowRecord.__pydantic_decorators__.field_validators


def test_a_bound_the_fast_path_does_not_know_stops_it_at_import(monkeypatch):
    info = FlowRecord.model_fields["bytes"]
    monkeypatch.setattr(info, "metadata", [*info.metadata, annotated_types.MultipleOf(2)])
    with pytest.raises(TypeError, match="MultipleOf"):
        _bounds("bytes", int)


def test_a_columns_values_follow_its_flows():
    batch = [(b"edge-1", encode({**GOOD, "bytes": n})) for n in (10, 20, 30)]
    flows = decode_flows(batch, now_s=NOW_S)
    assert flows.column("bytes").tolist() == [10.0, 20.0, 30.0]
    assert np.isnan(flows.column("fin_count")).all()


def test_a_caller_gets_the_number_fields_it_asks_for():
    batch = [(b"edge-1", encode(GOOD)), (b"edge-1", encode({**GOOD, "sport": None}))]
    flows = decode_flows(batch, columns=("ts", "start", "sport"), now_s=NOW_S)
    assert flows.numbers.shape == (2, 3)
    assert flows.column("sport")[0] == 51000.0
    assert np.isnan(flows.column("sport")[1])
    with pytest.raises(ValueError, match="ts and start"):
        decode_flows(batch, columns=("ts", "sport"))

"""Raw flows messages: every kind of bad input gets a reason a person can act on."""

import json
import time

import pytest

from streams.decode import MAX_FUTURE_S, MAX_RECORD_BYTES, Rejection, decode_flow
from streams.schemas import FlowRecord, RejectReason

GOOD = {"link": "edge-1", "ts": 1_767_225_600.5, "bytes": 1500, "packets": 2}


def encode(record: dict) -> bytes:
    return json.dumps(record).encode()


def test_a_good_record_decodes():
    record = decode_flow(b"edge-1", encode(GOOD))
    assert isinstance(record, FlowRecord)
    assert (record.link, record.bytes, record.packets) == ("edge-1", 1500, 2)


@pytest.mark.parametrize(
    ("value", "reason", "says"),
    [
        (b"{not json", RejectReason.JSON, "Invalid JSON"),
        (b"[1, 2]", RejectReason.JSON, "object"),
        (b"null", RejectReason.JSON, "object"),
        (b"\xff\xfe{}", RejectReason.ENCODING, "not UTF-8"),
        (b" " * (MAX_RECORD_BYTES + 1), RejectReason.TOO_LARGE, "at most"),
        (encode({**GOOD, "bytes": -1}), RejectReason.SCHEMA, "bytes"),
        (encode({**GOOD, "packets": 0}), RejectReason.SCHEMA, "packets"),
        (encode({**GOOD, "bytes": 10**30}), RejectReason.SCHEMA, "bytes"),
        (encode({**GOOD, "ts": 4_200_000_000}), RejectReason.SCHEMA, "ts"),
        (encode({**GOOD, "ts": "yesterday"}), RejectReason.SCHEMA, "ts"),
        (encode({**GOOD, "colour": "red"}), RejectReason.SCHEMA, "colour"),
        (encode({k: v for k, v in GOOD.items() if k != "link"}), RejectReason.SCHEMA, "link"),
        (encode({**GOOD, "start": GOOD["ts"] + 1}), RejectReason.SCHEMA, "after ts"),
        (encode({**GOOD, "src": "10.0.0.300"}), RejectReason.SCHEMA, "src"),
        (encode({**GOOD, "label": "cats"}), RejectReason.SCHEMA, "label"),
        (None, RejectReason.JSON, "no value"),
    ],
)
def test_bad_records_are_rejected_with_a_reason(value, reason, says):
    result = decode_flow(b"edge-1", value)
    assert isinstance(result, Rejection)
    assert result.reason is reason
    assert says in result.detail


def test_the_kafka_key_must_be_the_link():
    missing = decode_flow(None, encode(GOOD))
    other = decode_flow(b"edge-2", encode(GOOD))
    assert isinstance(missing, Rejection)
    assert missing.reason is RejectReason.KEY
    assert isinstance(other, Rejection)
    assert "edge-1" in other.detail


NOW_S = 1_790_000_000.0  # 2026-09-21


@pytest.mark.parametrize(
    ("ts", "accepted"),
    [
        (0.0, True),  # 1970: valid; the link's watermark decides whether it is late
        (978_307_200.0, True),  # a replay of a 2001 capture
        (NOW_S, True),
        (NOW_S + MAX_FUTURE_S, True),
        (NOW_S + MAX_FUTURE_S + 0.001, False),
        (4_102_444_799.0, False),  # the last second of 2099: a clock fault
    ],
)
def test_event_time_may_be_at_most_an_hour_ahead_of_the_clock(ts: float, accepted: bool):
    result = decode_flow(b"edge-1", encode({**GOOD, "ts": ts}), now_s=NOW_S)
    if accepted:
        assert isinstance(result, FlowRecord)
    else:
        assert isinstance(result, Rejection)
        assert result.reason is RejectReason.FUTURE
        assert "ahead of the worker's clock" in result.detail


def test_the_future_bound_reads_the_wall_clock_by_default():
    ahead = time.time() + 2 * MAX_FUTURE_S
    result = decode_flow(b"edge-1", encode({**GOOD, "ts": ahead}))
    assert isinstance(result, Rejection)
    assert result.reason is RejectReason.FUTURE


def test_addresses_are_validated_alike_the_first_time_and_after():
    from streams import schemas

    schemas._ADDRESSES.clear()
    for _ in range(2):  # parsed, then remembered
        record = decode_flow(b"edge-1", encode({**GOOD, "src": "10.0.0.7", "dst": "2001:DB8::1"}))
        assert isinstance(record, FlowRecord)
        assert (str(record.src), str(record.dst)) == ("10.0.0.7", "2001:db8::1")
        bad = decode_flow(b"edge-1", encode({**GOOD, "dst": "10.0.0.256"}))
        assert isinstance(bad, Rejection)
        assert bad.reason is RejectReason.SCHEMA
        assert "dst" in bad.detail
        assert "IPv4 or IPv6" in bad.detail
    assert set(schemas._ADDRESSES) == {"10.0.0.7", "2001:DB8::1"}  # never a bad one
    numeric = decode_flow(b"edge-1", encode({**GOOD, "src": 167772167}))
    assert isinstance(numeric, FlowRecord)
    assert str(numeric.src) == "10.0.0.7"


def test_remembered_addresses_stay_bounded(monkeypatch):
    from streams import schemas

    monkeypatch.setattr(schemas, "_MAX_ADDRESSES", 100)
    schemas._ADDRESSES.clear()
    for i in range(1000):
        decode_flow(b"edge-1", encode({**GOOD, "src": f"10.0.{i // 256}.{i % 256}"}))
    assert 0 < len(schemas._ADDRESSES) <= 100

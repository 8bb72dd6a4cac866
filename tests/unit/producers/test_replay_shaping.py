"""Replay shaping: --loop N shifts each pass past the one before; --from/--to cut [from, to)."""

from producers.replay import LOOP_GAP_S, shaped
from streams.schemas import FlowRecord, TrafficClass


def flow(ts: float, start: float | None = None, **extra) -> FlowRecord:
    return FlowRecord(
        link="lab",
        ts=ts,
        start=start,
        bytes=1500,
        packets=3,
        src="10.0.0.1",
        dst="10.0.0.2",
        sport=40000,
        dport=443,
        proto=6,
        **extra,
    )


# event time: 100   101.5      105          one pass spans 5 s; with the 1 s gap
#             a     b          c            the next pass starts 6 s later
FILE = [flow(100.0, 99.0), flow(101.5, 100.5, label=TrafficClass.WEB), flow(105.0)]
SPAN_S = 105.0 - 100.0


def passes_of(records):
    calls = []

    def passes():
        calls.append(len(calls))
        return iter(records)

    return passes, calls


def test_one_pass_gives_the_file_unchanged():
    passes, calls = passes_of(FILE)
    assert list(shaped(passes)) == FILE
    assert calls == [0]


def test_each_loop_is_shifted_forward_by_the_span_plus_the_gap():
    passes, calls = passes_of(FILE)
    out = list(shaped(passes, loops=3))
    assert len(calls) == 3  # the file is read again on each pass
    step = SPAN_S + LOOP_GAP_S
    assert [r.ts for r in out] == [100.0, 101.5, 105.0, 106.0, 107.5, 111.0, 112.0, 113.5, 117.0]
    assert [r.start for r in out] == [99.0, 100.5, None, 105.0, 106.5, None, 111.0, 112.5, None]
    for k in range(3):
        for original, shifted in zip(FILE, out[3 * k : 3 * k + 3], strict=True):
            assert shifted.ts == original.ts + k * step
            # everything but the times is the same record
            assert shifted.model_dump(exclude={"ts", "start"}) == original.model_dump(
                exclude={"ts", "start"}
            )


def test_a_pass_whose_clock_steps_back_still_starts_after_the_previous_pass():
    # event time: 10   5   12     the first record is not the earliest: span = 12 - 5 = 7
    stepping_back = [flow(10.0), flow(5.0), flow(12.0)]
    passes, _ = passes_of(stepping_back)
    out = list(shaped(passes, loops=2))
    first_pass, second_pass = out[:3], out[3:]
    assert min(r.ts for r in second_pass) > max(r.ts for r in first_pass)
    assert [r.ts for r in second_pass] == [18.0, 13.0, 20.0]  # shifted by 7 + 1


def test_from_is_inclusive_and_to_is_exclusive():
    passes, _ = passes_of(FILE)
    assert [r.ts for r in shaped(passes, from_s=101.5)] == [101.5, 105.0]
    assert [r.ts for r in shaped(passes, to_s=105.0)] == [100.0, 101.5]
    assert [r.ts for r in shaped(passes, from_s=101.5, to_s=105.0)] == [101.5]
    assert list(shaped(passes, from_s=105.0, to_s=105.0)) == []


def test_the_range_applies_to_shifted_time_across_passes():
    # passes at 100..105, 106..111, 112..117: [105, 112) takes c of pass 0 and all of pass 1
    passes, _ = passes_of(FILE)
    out = list(shaped(passes, loops=3, from_s=105.0, to_s=112.0))
    assert [r.ts for r in out] == [105.0, 106.0, 107.5, 111.0]


def test_an_empty_file_ends_the_loop_at_once():
    passes, calls = passes_of([])
    assert list(shaped(passes, loops=5)) == []
    assert calls == [0]

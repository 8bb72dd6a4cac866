"""Per-link bins and windows: drawn timelines, then a property test against a naive reference."""

import contextlib
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.bins import ClosedBin, LateRecordError, LinkBins


def add_all(state: LinkBins, *records: tuple[float, int]) -> list[ClosedBin]:
    closed: list[ClosedBin] = []
    for ts, nbytes in records:
        closed.extend(state.add(ts, nbytes))
    return closed


def test_bin_closes_when_watermark_passes_its_end():
    # event time: 0    1    2    3    4        bin = 1 s, lateness = 2 s
    #             a         b         c        c at t=4.2 -> watermark 2.2
    #             [bin 0 ]                      bin 0 and 1 close, bin 2 stays open
    state = LinkBins.empty(bin_s=1.0, lateness_s=2.0)
    closed = [*state.add(0.1, 100), *state.add(2.0, 50), *state.add(4.2, 10)]
    assert [b.start_s for b in closed] == [0.0, 1.0]
    assert closed[0].bytes == 100
    assert closed[1].bytes == 0  # an empty bin still closes
    assert state.watermark_us == 2_200_000


def test_watermark_exactly_on_a_bin_end_closes_that_bin():
    # event time: 0    1    2    3             lateness 2: a record at exactly 3.0
    #             a              b             makes the watermark 1.0 = end of bin 0
    state = LinkBins.empty(bin_s=1.0, lateness_s=2.0)
    closed = add_all(state, (0.5, 7), (3.0, 1))
    assert [(b.start_s, b.end_s, b.bytes) for b in closed] == [(0.0, 1.0, 7)]


def test_record_on_a_bin_boundary_belongs_to_the_later_bin():
    # bins are half-open [k, k+1): t = 1.0 is in bin 1, and 0.3 with 0.1 s bins is bin 3
    state = LinkBins.empty(bin_s=1.0, lateness_s=0.0)
    closed = add_all(state, (0.999999, 1), (1.0, 2), (2.0, 4))
    assert [(b.start_s, b.bytes) for b in closed] == [(0.0, 1), (1.0, 2)]
    tenth = LinkBins.empty(bin_s=0.1, lateness_s=0.0)
    closed = add_all(tenth, (0.3, 5), (0.4, 0))
    assert [(b.start_s, b.bytes) for b in closed] == [(0.3, 5)]


def test_out_of_order_record_within_lateness_is_counted_in_its_own_bin():
    # event time: 0    1    2    3    4        lateness 2
    #                  b    a                  a (2.5) first, then b (1.5): watermark 0.5,
    #                                          bin 1 still open -> b is counted in bin 1
    state = LinkBins.empty(bin_s=1.0, lateness_s=2.0)
    closed = add_all(state, (2.5, 10), (1.5, 20), (5.0, 1))
    assert [(b.start_s, b.bytes) for b in closed] == [(1.0, 20), (2.0, 10)]
    assert state.late_records == 0


def test_record_in_a_closed_bin_is_late_and_not_counted():
    # event time: 0    1    2    3    4    5   lateness 2
    #             a                   b        b at 4.5 -> watermark 2.5: bins 0, 1 closed
    #                  x                       x at 1.2 arrives after: bin 1 closed -> late
    state = LinkBins.empty(bin_s=1.0, lateness_s=2.0)
    add_all(state, (0.5, 1), (4.5, 1))
    assert state.is_late(1.2)
    assert not state.is_late(2.5)  # bin 2 ends at 3.0 > 2.5: still open
    with pytest.raises(LateRecordError):
        state.add(1.2, 99)
    assert state.late_records == 1
    assert state.total_bytes == 1  # only bin 0 closed so far; the late 99 bytes are nowhere


def test_idle_link_closes_its_bins_as_the_watermark_is_advanced():
    # event time: 0    1    2    3 ... 8       one record, then silence; the idle timer
    #             a                            advances the watermark to 5.0
    state = LinkBins.empty(bin_s=1.0, lateness_s=2.0, window_bins=10)
    assert state.add(0.2, 40) == []
    closed = state.advance(5.0)
    assert [(b.start_s, b.bytes) for b in closed] == [
        (0.0, 40),
        (1.0, 0),
        (2.0, 0),
        (3.0, 0),
        (4.0, 0),
    ]
    assert state.advance(4.0) == []  # the watermark never moves back
    assert state.is_late(4.9)


def test_long_silence_emits_one_window_of_empty_bins_then_skips_to_the_next_traffic():
    # window = 3 bins. After bin 0 (traffic) the link is silent until t = 1000:
    # bins 1, 2, 3 close empty (the window is then all zeros); bins 4..999 are skipped.
    state = LinkBins.empty(bin_s=1.0, lateness_s=0.0, window_bins=3)
    closed = add_all(state, (0.5, 8), (1000.5, 3), (1002.0, 0))
    assert [b.start_s for b in closed] == [0.0, 1.0, 2.0, 3.0, 1000.0, 1001.0]
    after = closed[4]
    assert (after.bytes, after.window_bytes, after.window_bins) == (3, 3, 3)
    assert after.window_start_s == 998.0


def test_window_sums_cover_the_last_w_bins():
    state = LinkBins.empty(bin_s=1.0, lateness_s=0.0, window_bins=3)
    closed = add_all(state, *[(i + 0.5, 10 * (i + 1)) for i in range(6)])
    # bins 0..4 closed with bytes 10, 20, 30, 40, 50
    assert [b.window_bytes for b in closed] == [10, 30, 60, 90, 120]
    assert [b.window_bins for b in closed] == [1, 2, 3, 3, 3]
    assert closed[-1].window_start_s == 2.0


def test_snapshot_round_trip_continues_identically():
    records = [(0.1, 5), (0.7, 6), (3.2, 7), (2.9, 8), (9.0, 1)]
    whole = LinkBins.empty(bin_s=1.0, lateness_s=1.0, window_bins=4)
    expected = add_all(whole, *records)
    first = LinkBins.empty(bin_s=1.0, lateness_s=1.0, window_bins=4)
    got = add_all(first, *records[:3])
    restored = LinkBins.from_dict(first.to_dict(), first.config)
    got += add_all(restored, *records[3:])
    assert got == expected
    assert restored.to_dict() == whole.to_dict()


def test_snapshot_from_other_settings_is_refused():
    state = LinkBins.empty(bin_s=1.0)
    other = LinkBins.empty(bin_s=2.0)
    with pytest.raises(ValueError, match="state was made with"):
        LinkBins.from_dict(state.to_dict(), other.config)


# ---- property: the incremental bins agree with a naive reference ----------


def naive(records: list[tuple[int, int]], bin_ms: int, late_ms: int, window: int):
    """Recompute everything from scratch with the contract's own words (times in ms)."""
    accepted: list[tuple[int, int]] = []
    late = 0
    max_ts = None
    for ts, nbytes in records:
        index = ts // bin_ms
        if max_ts is not None and (index + 1) * bin_ms <= max_ts - late_ms:
            late += 1
            continue
        accepted.append((index, nbytes))
        max_ts = ts if max_ts is None else max(max_ts, ts)
    if not accepted:
        return [], late
    first = min(i for i, _ in accepted)
    limit = math.floor((max_ts - late_ms) / bin_ms)  # bins below this index have closed
    per_bin = {i: 0 for i in range(first, max(first, limit))}
    traffic = set()
    for i, nbytes in accepted:
        if i in per_bin:
            per_bin[i] += nbytes
            traffic.add(i)
    emitted = []
    empty_run = 0
    indices = sorted(per_bin)
    for pos, i in enumerate(indices):
        if i in traffic:
            empty_run = 0
        else:
            if empty_run >= window:
                continue
            empty_run += 1
        in_window = indices[max(0, pos - window + 1) : pos + 1]
        emitted.append((i, per_bin[i], sum(per_bin[j] for j in in_window)))
    return emitted, late


@settings(max_examples=300, deadline=None)
@given(
    records=st.lists(
        # times on a 50 ms grid, so that records and watermarks often sit exactly on bin edges
        st.tuples(st.integers(0, 1_200).map(lambda t: t * 50), st.integers(0, 1_000)),
        min_size=1,
        max_size=60,
    ),
    bin_ms=st.sampled_from([100, 250, 1000, 3000]),
    late_ms=st.sampled_from([0, 500, 2000, 7000]),
    window=st.integers(1, 6),
)
def test_incremental_bins_match_the_naive_reference(records, bin_ms, late_ms, window):
    state = LinkBins.empty(bin_s=bin_ms / 1000, lateness_s=late_ms / 1000, window_bins=window)
    got = []
    for ts, nbytes in records:
        with contextlib.suppress(LateRecordError):
            got.extend(state.add(ts / 1000, nbytes))
    expected, late = naive(records, bin_ms, late_ms, window)
    assert [(round(b.start_s * 1000) // bin_ms, b.bytes, b.window_bytes) for b in got] == expected
    assert state.late_records == late
    assert state.total_bytes == sum(b for _, b, _ in expected)


def test_each_closed_bin_carries_its_class_mix():
    # event time: 0.1 web 100, 0.5 dns 40, 0.7 web 10 | bin 1 empty | 2.2 bulk 5 -> watermark 0.2
    bins = LinkBins.empty(bin_s=1.0, lateness_s=0.0, window_bins=3)
    closed = [
        *bins.add(0.1, 100, cls="web"),
        *bins.add(0.5, 40, cls="dns"),
        *bins.add(0.7, 10, cls="web"),
        *bins.add(2.2, 5, cls="bulk"),
    ]
    assert [b.class_mix for b in closed] == [{"dns": (40, 1), "web": (110, 2)}, {}]
    restored = LinkBins.from_dict(bins.to_dict(), bins.config)
    [last] = restored.advance(3.0)
    assert last.class_mix == {"bulk": (5, 1)}


def test_a_snapshot_from_before_the_class_mix_still_loads():
    bins = LinkBins.empty(bin_s=1.0, lateness_s=0.0, window_bins=3)
    bins.add(0.5, 100)
    old = bins.to_dict()
    old["open"] = [entry[:5] for entry in old["open"]]
    [closed] = LinkBins.from_dict(old, bins.config).advance(1.0)
    assert (closed.bytes, closed.class_mix) == (100, {})

"""Series CSVs: wide and long files, the time formats, and errors that name the line."""

import pytest

from models.exceptions import DataError
from models.seriescsv import read_series_csv


def test_wide_file_gives_a_series_per_value_column_in_bits_per_second(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(
        "time,a_mbps,b\n2004-03-01 00:00:00,1.5,10\n2004-03-01 00:05:00,2,20\n"
        "2004-03-01 00:10:00,2.5,30\n"
    )
    a, b = read_series_csv(path)
    assert a.bin_s == b.bin_s == 300.0
    assert a.bps.tolist() == [1.5e6, 2e6, 2.5e6]  # *mbps columns are converted
    assert b.bps.tolist() == [10, 20, 30]
    assert a.start_s[0] == 1078099200.0


def test_long_file_gives_a_series_per_key(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(
        "time,source,target,mbps\n20040301-0000,A,B,1\n20040301-0000,A,C,2\n"
        "20040301-0005,A,B,3\n20040301-0005,A,C,4\n20040301-0010,A,B,5\n"
    )
    series = {s.name: s for s in read_series_csv(path, "demo")}
    assert series["long.csv:A/B"].bps.tolist() == [1e6, 3e6, 5e6]
    assert series["long.csv:A/C"].source == "demo"
    assert series["long.csv:A/C"].bps.tolist() == [2e6, 4e6, 0.0]  # absent at 00:10: no traffic


def test_hours_column(tmp_path):
    path = tmp_path / "hours.csv"
    path.write_text("hours_since_midnight,1\n0.0,5\n0.5,6\n1.0,7\n")
    [s] = read_series_csv(path)
    assert s.bin_s == 1800.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("when,x\n1,2\n2,3\n", "no time column"),
        ("time,x\n1,2\nnot-a-time,3\n", "line 3: time 'not-a-time'"),
        ("time,x\n1,2\n2,-3\n3,4\n", "line 3: values must be numbers >= 0"),
        ("time,x\n2,2\n1,3\n3,4\n", "not increasing"),
        ("time,x\n1,2\n", "fewer than two data rows"),
    ],
)
def test_bad_files_are_refused_with_the_reason(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_series_csv(path)


def test_a_gap_in_time_starts_a_new_series(tmp_path):
    path = tmp_path / "gap.csv"
    rows = [f"{t},{t}" for t in (0, 300, 600, 900, 90_000, 90_300, 90_600)]
    path.write_text("time,x\n" + "\n".join(rows) + "\n")
    first, second = read_series_csv(path)
    assert first.start_s.tolist() == [0, 300, 600, 900]
    assert second.start_s.tolist() == [90_000, 90_300, 90_600]
    assert first.name.endswith("#0")
    assert second.name.endswith("#1")

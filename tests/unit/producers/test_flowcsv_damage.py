"""A damaged flow CSV costs the damaged rows, never the rest of the file.

Bytes that are not UTF-8 and cells over the csv module's size limit used to
end the reading at that row (or refuse the whole file when they came early):
every row after it was lost while the summary said one bad row.
"""

import pytest

from producers.exceptions import DatasetError
from producers.flowcsv import CsvStats, read_flow_csv
from tests.unit.producers.test_flowcsv import CIC_HEADER, cic

GOOD_ROWS = 300


def lines(rows: list[list[str]]) -> list[bytes]:
    return [",".join(row).encode() for row in [CIC_HEADER, *rows]]


@pytest.mark.parametrize("at", [1, 150, GOOD_ROWS - 1])
@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda line: line[:30] + b"\xff\xfe" + line[30:], "not UTF-8"),
        (lambda line: line[:30] + b"\xc3" + line[31:], "not UTF-8"),
        (lambda line: line + b',"' + b"9" * 200_000 + b'"', "field limit"),
    ],
)
def test_a_damaged_row_is_counted_and_the_rows_after_it_are_read(tmp_path, at, damage, says):
    raw = lines([cic(id=str(i)) for i in range(GOOD_ROWS)])
    raw[at] = damage(raw[at])  # raw[0] is the header
    path = tmp_path / "flows.csv"
    path.write_bytes(b"\r\n".join(raw) + b"\r\n")
    stats = CsvStats()
    records = read_flow_csv(path, "lab", stats)
    assert (stats.rows, stats.bad, len(records)) == (GOOD_ROWS, 1, GOOD_ROWS - 1)
    assert stats.first_errors[0].startswith(f"line {at + 1}: ")
    assert says in stats.first_errors[0]


def test_a_header_that_is_not_utf8_refuses_the_file(tmp_path):
    raw = lines([cic()])
    raw[0] = raw[0].replace(b"Label", b"L\xffbel")
    path = tmp_path / "flows.csv"
    path.write_bytes(b"\n".join(raw))
    with pytest.raises(DatasetError, match="header is not UTF-8"):
        read_flow_csv(path, "lab", CsvStats())

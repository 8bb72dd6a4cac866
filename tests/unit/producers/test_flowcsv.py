"""Flow CSVs with bad rows: each is counted and skipped with its line, good rows still come out.

The headers are the real ones of ../shared/data/flows (a subset of the columns,
in the files' order, spelled as there); the rows are made up here.
"""

import csv

import pytest

from producers.exceptions import DatasetError
from producers.flowcsv import CsvStats, read_flow_csv
from streams.schemas import TrafficClass

CIC_HEADER = [
    "id", "Flow ID", "Src IP", "Src Port", "Dst IP", "Dst Port", "Protocol", "Timestamp",
    "Flow Duration", "Total Fwd Packet", "Total Bwd packets", "Total Length of Fwd Packet",
    "Total Length of Bwd Packet", "Fwd Header Length", "Bwd Header Length", "Label",
    "Attempted Category",
]  # fmt: skip
WESTERMO_HEADER = [
    "sAddress", "rAddress", "sIPs", "rIPs", "protocol", "startDate", "endDate", "start", "end",
    "duration", "sPackets", "rPackets", "sBytesSum", "rBytesSum", "IT_B_Label", "IT_M_Label",
]  # fmt: skip


def write(path, header, rows):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def cic(**change):
    row = {
        "id": "1", "Flow ID": "f", "Src IP": "192.168.10.5", "Src Port": "53709",
        "Dst IP": "205.174.165.73", "Dst Port": "8080", "Protocol": "6",
        "Timestamp": "2017-07-07 13:39:36.267908", "Flow Duration": "81379",
        "Total Fwd Packet": "5", "Total Bwd packets": "4", "Total Length of Fwd Packet": "196",
        "Total Length of Bwd Packet": "128", "Fwd Header Length": "112",
        "Bwd Header Length": "92", "Label": "BENIGN", "Attempted Category": "-1",
    }  # fmt: skip
    row.update(change)
    return [row[c] for c in CIC_HEADER]


def westermo(**change):
    row = {
        "sAddress": "198.18.134.4", "rAddress": "198.18.134.99", "sIPs": "198.18.134.4",
        "rIPs": "198.18.134.99", "protocol": "IPV4-TCP", "startDate": "2023-03-10 10:44:15",
        "endDate": "2023-03-10 10:44:15", "start": "1678441455.319119",
        "end": "1678441455.320463", "duration": "0.001345", "sPackets": "1", "rPackets": "11",
        "sBytesSum": "44", "rBytesSum": "480", "IT_B_Label": "0", "IT_M_Label": "Normal",
    }  # fmt: skip
    row.update(change)
    return [row[c] for c in WESTERMO_HEADER]


BAD_ROWS = {
    "CICFlowMeter": (
        CIC_HEADER,
        [
            cic(),  # line 2
            cic(**{"Flow Duration": "fast"}),  # line 3
            cic(**{"Total Fwd Packet": "-5"}),  # line 4
            cic()[:6],  # line 5: cells missing after Dst Port
            cic(**{"Src IP": "192.168.10.300"}),  # line 6
            cic(**{"Timestamp": "2017-07-07 13:49:42.274615", "Label": "Bot"}),  # line 7
        ],
        (6, 4, 0),
        [
            "line 3: ValueError: Flow Duration is 'fast', not a number",
            "line 4: packets: Input should be greater than or equal to 1",
            "line 5: 6 cells where the header has 17",
            "line 6: src: value is not a valid IPv4 or IPv6 address",
        ],
        [1499434776.349287, 1499435382.274615 + 0.081379],
    ),
    "Westermo": (
        WESTERMO_HEADER,
        [
            westermo(),  # line 2
            westermo(protocol="ARP", sIPs="", rIPs=""),  # line 3: not IP, which is not bad
            westermo(sPackets="many"),  # line 4
            westermo(sBytesSum="-44"),  # line 5
            westermo()[:9],  # line 6: cells missing after end
            westermo(end="1678441456.0"),  # line 7
            westermo(IT_M_Label="Strange"),  # line 8
        ],
        (7, 4, 1),
        [
            "line 4: ValueError: sPackets is 'many', not a number",
            "line 5: fwd_bytes: Input should be greater than or equal to 0",
            "line 6: 9 cells where the header has 16",
            "line 8: ValueError: unknown Westermo label 'STRANGE'",
        ],
        [1678441455.320463, 1678441456.0],
    ),
}


@pytest.mark.parametrize("kind", list(BAD_ROWS))
def test_bad_rows_are_counted_and_skipped_by_line_and_good_rows_still_come_out(tmp_path, kind):
    header, rows, (read, bad, non_ip), errors, good_ts = BAD_ROWS[kind]
    stats = CsvStats()
    records = read_flow_csv(write(tmp_path / "flows.csv", header, rows), "lab", stats)
    assert (stats.rows, stats.bad, stats.non_ip) == (read, bad, non_ip)
    assert stats.first_errors == errors
    assert [r.ts for r in records] == pytest.approx(good_ts, abs=1e-6)


def test_a_cic_row_becomes_a_flow_record(tmp_path):
    rows = [cic(), cic(**{"Timestamp": "2017-07-07 13:49:42.274615", "Label": "Bot"})]
    benign, bot = read_flow_csv(write(tmp_path / "cic.csv", CIC_HEADER, rows), "lab", CsvStats())
    assert benign.start == 1499434776.267908  # 2017-07-07T13:39:36.267908Z
    assert benign.ts == 1499434776.349287  # start + 81379 us
    assert (benign.packets, benign.fwd_packets, benign.bwd_packets) == (9, 5, 4)
    # payload + headers as CICFlowMeter reports them + 20 bytes of IPv4 header a packet
    assert (benign.fwd_bytes, benign.bwd_bytes) == (196 + 112 + 20 * 5, 128 + 92 + 20 * 4)
    assert benign.bytes == benign.fwd_bytes + benign.bwd_bytes
    assert (str(benign.src), benign.sport, str(benign.dst), benign.dport, benign.proto) == (
        "192.168.10.5",
        53709,
        "205.174.165.73",
        8080,
        6,
    )
    assert (benign.link, benign.label, bot.label) == ("lab", None, TrafficClass.ATTACK)


def test_westermo_rows_become_flow_records_one_way_flows_included(tmp_path):
    rows = [westermo(), westermo(rPackets="", rBytesSum="", IT_M_Label="BAD-SSH")]
    both_ways, one_way = read_flow_csv(
        write(tmp_path / "westermo.csv", WESTERMO_HEADER, rows), "plant", CsvStats()
    )
    assert (both_ways.start, both_ways.ts) == (1678441455.319119, 1678441455.320463)
    assert (both_ways.packets, both_ways.bytes, both_ways.proto) == (12, 44 + 480, 6)
    assert (both_ways.link, both_ways.label) == ("plant", None)
    assert (one_way.packets, one_way.bytes, one_way.bwd_packets, one_way.bwd_bytes) == (1, 44, 0, 0)
    assert one_way.label == TrafficClass.ATTACK


def test_records_come_out_in_ts_order_whatever_the_row_order(tmp_path):
    later, earlier = westermo(start="20.0", end="30.0"), westermo(start="5.0", end="10.0")
    path = write(tmp_path / "westermo.csv", WESTERMO_HEADER, [later, earlier])
    assert [r.ts for r in read_flow_csv(path, "plant", CsvStats())] == [10.0, 30.0]


def test_only_the_first_ten_errors_are_kept_but_all_are_counted(tmp_path):
    rows = [westermo(sPackets="x")] * 12 + [westermo()]
    stats = CsvStats()
    records = read_flow_csv(write(tmp_path / "w.csv", WESTERMO_HEADER, rows), "plant", stats)
    assert (stats.bad, len(stats.first_errors), len(records)) == (12, 10, 1)


def test_an_unknown_column_set_names_the_missing_columns(tmp_path):
    near_westermo = [c for c in WESTERMO_HEADER if c not in ("rBytesSum", "IT_M_Label")]
    path = write(tmp_path / "w.csv", near_westermo, [])
    with pytest.raises(DatasetError) as error:
        read_flow_csv(path, "plant", CsvStats())
    message = str(error.value)
    assert "closest is Westermo" in message
    assert message.endswith("'rBytesSum', 'IT_M_Label'")


def test_a_csv_of_neither_format_names_the_closest_formats_columns(tmp_path):
    path = write(tmp_path / "other.csv", ["a", "Src IP", "Dst IP"], [["1", "2", "3"]])
    with pytest.raises(DatasetError) as error:
        read_flow_csv(path, "lab", CsvStats())
    assert "closest is CICFlowMeter" in str(error.value)
    assert "'Src Port'" in str(error.value)
    assert "'Src IP'" not in str(error.value)

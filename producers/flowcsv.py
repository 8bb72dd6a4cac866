"""Flow datasets as FlowRecords: CICFlowMeter CSVs (CIC-IDS2017/2018) and the Westermo flow CSVs.

The column set decides the format. Rows that cannot be read (bad numbers,
missing addresses, bytes that are not UTF-8, a cell over the csv module's
size limit) are counted and skipped with their line number, and reading goes
on with the next row; non-IP flows (ARP, LLDP) are counted as such. So every
row is a record, a non-IP flow or a bad row: ``rows == records + non_ip +
bad``. Records come out sorted by ``ts``.

What the columns mean, and what linkcast makes of them:

* CICFlowMeter: ``Timestamp`` is the flow start in UTC, ``Flow Duration`` in
  microseconds, ``ts`` = start + duration. The lengths are payload lengths;
  ``bytes`` adds the header lengths CICFlowMeter reports and 20 bytes of IPv4
  header per packet, an estimate of the IP bytes. ``Label`` BENIGN gives no
  label (benign traffic of every kind), every other label gives ``attack``.
  Flag counts and flow inter-arrival times (microseconds) are kept where the
  file has them (``CIC_EXTRAS``).
* Westermo: ``start``/``end`` are epoch seconds, ``sBytesSum``/``rBytesSum``
  IP bytes, no ports. ``IT_M_Label``: Normal gives no label, GOOD-SSH gives
  ``interactive``, BAD-SSH, BAD-PORTSCAN* and BAD-MITM give ``attack``,
  BAD-MISCONF* gives ``other``.
"""

import csv
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from producers.exceptions import DatasetError
from streams.schemas import FlowRecord, TrafficClass

CIC_COLUMNS = (
    "Src IP",
    "Src Port",
    "Dst IP",
    "Dst Port",
    "Protocol",
    "Timestamp",
    "Flow Duration",
    "Total Fwd Packet",
    "Total Bwd packets",
    "Total Length of Fwd Packet",
    "Total Length of Bwd Packet",
    "Fwd Header Length",
    "Bwd Header Length",
    "Label",
)
WESTERMO_COLUMNS = (
    "sIPs",
    "rIPs",
    "protocol",
    "start",
    "end",
    "sPackets",
    "rPackets",
    "sBytesSum",
    "rBytesSum",
    "IT_M_Label",
)
WESTERMO_PROTOCOLS = {"IPV4-TCP": 6, "IPV4-UDP": 17, "IPV4-ICMP": 1, "IPV4-2": 2}
IPV4_HEADER = 20


@dataclass
class CsvStats:
    rows: int = 0
    non_ip: int = 0
    bad: int = 0
    first_errors: list[str] = field(default_factory=list)

    def reject(self, line: int, why: str) -> None:
        self.bad += 1
        if len(self.first_errors) < 10:
            self.first_errors.append(f"line {line}: {why}")


def read_flow_csv(path: Path, link: str, stats: CsvStats) -> list[FlowRecord]:
    """Every usable row of ``path`` as a FlowRecord on ``link``, sorted by ``ts``."""
    try:
        # Bytes that are not UTF-8 become lone surrogates, so that one bad byte costs
        # its row (see _rows) and not the rest of the file.
        handle = path.open(newline="", encoding="utf-8", errors="surrogateescape")
        reader = csv.DictReader(handle)
        header = [c.strip() for c in (reader.fieldnames or [])]
    except (OSError, csv.Error) as exc:
        raise DatasetError(f"cannot read {path} as CSV: {exc}") from exc
    if any(_not_utf8(c) for c in header):
        handle.close()
        raise DatasetError(f"cannot read {path} as CSV: its header is not UTF-8")
    with handle:
        reader.fieldnames = header
        convert = _format_of(path, header)
        records = list(_rows(reader, link, convert, stats))
    records.sort(key=lambda r: r.ts)
    return records


def _format_of(
    path: Path, header: list[str]
) -> "Callable[[dict[str, str], str], FlowRecord | None]":
    columns = set(header)
    candidates = {"CICFlowMeter": (CIC_COLUMNS, _cic), "Westermo": (WESTERMO_COLUMNS, _westermo)}
    best_missing: list[str] = []
    best_name = ""
    best_rank = (-1, 0)
    for name, (wanted, convert) in candidates.items():
        missing = [c for c in wanted if c not in columns]
        if not missing:
            return convert
        # closest: the most of its columns found, then the fewest missing
        rank = (len(wanted) - len(missing), -len(missing))
        if rank > best_rank:
            best_name, best_missing, best_rank = name, missing, rank
    raise DatasetError(
        f"{path} is not a known flow CSV: closest is {best_name}, which also needs the columns "
        + ", ".join(repr(c) for c in best_missing)
    )


def _rows(
    reader: "csv.DictReader[str]",
    link: str,
    convert: "Callable[[dict[str, str], str], FlowRecord | None]",
    stats: CsvStats,
) -> Iterator[FlowRecord]:
    line = 1  # the header
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # the reader starts afresh on the next line
            # Inside a quoted cell the reader has not counted the line yet.
            line = max(reader.line_num, line + 1)
            stats.rows += 1
            stats.reject(line, f"unreadable row: {exc}")
            continue
        line = reader.line_num
        stats.rows += 1
        if None in row.values():  # csv.DictReader's filler for cells the row does not have
            cells = sum(v is not None for v in row.values())
            stats.reject(line, f"{cells} cells where the header has {len(reader.fieldnames or [])}")
            continue
        if any(_not_utf8(v) for k, v in row.items() if k is not None):
            stats.reject(line, "the row has bytes that are not UTF-8")
            continue
        try:
            record = convert(row, link)
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            stats.reject(line, _short(exc))
            continue
        if record is None:
            stats.non_ip += 1
        else:
            yield record


def _not_utf8(text: str) -> bool:
    """Whether ``text`` holds bytes that were not UTF-8 (as surrogateescape's lone surrogates)."""
    return any("\udc80" <= c <= "\udcff" for c in text)


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    return f"{type(exc).__name__}: {exc}"


def _number(row: dict[str, str], column: str) -> float:
    try:
        value = float(row[column])
    except ValueError:
        raise ValueError(f"{column} is {row[column]!r}, not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{column} is {row[column]!r}")
    return value


def _cic(row: dict[str, str], link: str) -> FlowRecord | None:
    start = datetime.fromisoformat(row["Timestamp"]).replace(tzinfo=UTC).timestamp()
    duration_s = _number(row, "Flow Duration") / 1e6
    fwd_packets = int(_number(row, "Total Fwd Packet"))
    bwd_packets = int(_number(row, "Total Bwd packets"))
    fwd_bytes = int(
        _number(row, "Total Length of Fwd Packet")
        + _number(row, "Fwd Header Length")
        + IPV4_HEADER * fwd_packets
    )
    bwd_bytes = int(
        _number(row, "Total Length of Bwd Packet")
        + _number(row, "Bwd Header Length")
        + IPV4_HEADER * bwd_packets
    )
    label = row["Label"].strip()
    return FlowRecord(
        link=link,
        ts=round(start + max(0.0, duration_s), 6),
        start=round(start, 6),
        bytes=fwd_bytes + bwd_bytes,
        packets=fwd_packets + bwd_packets,
        src=row["Src IP"],
        dst=row["Dst IP"],
        sport=int(_number(row, "Src Port")),
        dport=int(_number(row, "Dst Port")),
        proto=int(_number(row, "Protocol")),
        fwd_bytes=fwd_bytes,
        bwd_bytes=bwd_bytes,
        fwd_packets=fwd_packets,
        bwd_packets=bwd_packets,
        label=None if label.upper() == "BENIGN" else TrafficClass.ATTACK,
        **_cic_extras(row),
    )


#: Optional CICFlowMeter columns with the same meaning as a FlowRecord field:
#: (column, field, scale). Its packet lengths are payload lengths, not IP lengths,
#: so they are left out.
CIC_EXTRAS = (
    ("SYN Flag Count", "syn_count", None),
    ("FIN Flag Count", "fin_count", None),
    ("RST Flag Count", "rst_count", None),
    ("PSH Flag Count", "psh_count", None),
    ("ACK Flag Count", "ack_count", None),
    ("URG Flag Count", "urg_count", None),
    ("Flow IAT Min", "iat_min_s", 1e-6),
    ("Flow IAT Mean", "iat_mean_s", 1e-6),
    ("Flow IAT Max", "iat_max_s", 1e-6),
    ("Flow IAT Std", "iat_std_s", 1e-6),
)


def _cic_extras(row: dict[str, str]) -> dict[str, float | int]:
    """The optional columns a file has: flag counts, and inter-arrival times in seconds."""
    extras: dict[str, float | int] = {}
    for column, name, scale in CIC_EXTRAS:
        if row.get(column) not in (None, ""):
            value = _number(row, column)
            extras[name] = int(value) if scale is None else max(0.0, value * scale)
    return extras


def _westermo(row: dict[str, str], link: str) -> FlowRecord | None:
    proto = WESTERMO_PROTOCOLS.get(row["protocol"])
    if proto is None:
        return None  # ARP, LLDP: not IP
    fwd_packets = int(_number(row, "sPackets"))
    bwd_packets = int(_number(row, "rPackets")) if row["rPackets"] else 0
    fwd_bytes = int(_number(row, "sBytesSum"))
    bwd_bytes = int(_number(row, "rBytesSum")) if row["rBytesSum"] else 0
    return FlowRecord(
        link=link,
        ts=round(_number(row, "end"), 6),
        start=round(_number(row, "start"), 6),
        bytes=fwd_bytes + bwd_bytes,
        packets=fwd_packets + bwd_packets,
        src=row["sIPs"],
        dst=row["rIPs"],
        proto=proto,
        fwd_bytes=fwd_bytes,
        bwd_bytes=bwd_bytes,
        fwd_packets=fwd_packets,
        bwd_packets=bwd_packets,
        label=_westermo_label(row["IT_M_Label"]),
    )


def _westermo_label(label: str) -> TrafficClass | None:
    label = label.strip().upper()
    if label == "NORMAL":
        return None
    if label == "GOOD-SSH":
        return TrafficClass.INTERACTIVE
    if label.startswith("BAD-MISCONF"):
        return TrafficClass.OTHER
    if label.startswith("BAD-"):
        return TrafficClass.ATTACK
    raise ValueError(f"unknown Westermo label {label!r}")

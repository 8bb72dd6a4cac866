"""Bandwidth series from CSV files: a time column and one or more value columns.

Wide files (``time,link_a,link_b``) give one series per value column; long
files (``time,source,target,mbps``) one series per combination of the text
columns. Times may be ISO dates (``2004-03-01 00:05:00``), compact dates
(``20040301-0005``), epoch seconds, or hours (a column named ``hours...``).
Values are per second in the file's unit; a column named ``*mbps`` is
converted to bits per second. The step is the median time difference; rows
must be in time order. A time missing from the whole file is a gap, which
starts a new series (bins count time); in a long file, a key missing at a time
the file has is zero there (traffic matrices list only the pairs with traffic).
"""

import csv
import itertools
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from models.exceptions import DataError
from models.series import Series

TIME_COLUMNS = ("time", "timestamp", "ts", "date", "datetime", "hours_since_midnight")
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y%m%d-%H%M")


def _parse_time(text: str, column: str) -> float:
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return number * 3600.0 if column.startswith("hours") else number
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    raise ValueError(f"time {text!r} is not a date, epoch seconds or hours")


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if np.isfinite(value) else None


def read_series_csv(path: Path, source: str | None = None) -> list[Series]:
    """Every series in ``path``; raises DataError naming the row and cell that is wrong."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {path} as CSV: {exc}") from exc
    if len(rows) < 3:
        raise DataError(f"{path} has fewer than two data rows")
    header = [h.strip() for h in rows[0]]
    lowered = [h.lower() for h in header]
    time_col = next((i for i, h in enumerate(lowered) if h in TIME_COLUMNS), None)
    if time_col is None:
        raise DataError(f"{path}: no time column; name one of {', '.join(TIME_COLUMNS)}")
    data = [r for r in rows[1:] if any(cell.strip() for cell in r)]
    others = [i for i in range(len(header)) if i != time_col]
    numeric = [i for i in others if all(_number(r[i]) is not None for r in data[:50] if len(r) > i)]
    text = [i for i in others if i not in numeric]
    if not numeric:
        raise DataError(f"{path}: no numeric value column")
    if text and len(numeric) != 1:
        raise DataError(f"{path}: a long file needs exactly one value column, found {len(numeric)}")
    groups: dict[tuple[str, ...], list[tuple[float, list[float]]]] = {}
    for line, row in enumerate(data, start=2):
        if len(row) != len(header):
            raise DataError(f"{path} line {line}: {len(row)} cells, the header has {len(header)}")
        try:
            ts = _parse_time(row[time_col], lowered[time_col])
        except ValueError as exc:
            raise DataError(f"{path} line {line}: {exc}") from exc
        cells = [_number(row[i]) for i in numeric]
        numbers = [v for v in cells if v is not None and v >= 0]
        if len(numbers) != len(cells):
            raise DataError(f"{path} line {line}: values must be numbers >= 0, got {row}")
        groups.setdefault(tuple(row[i].strip() for i in text), []).append((ts, numbers))
    # Long files list only the keys with traffic at a time: a key missing at a time the
    # file has is zero there. A time missing from the whole file is a gap instead.
    all_times = np.array(sorted({p[0] for points in groups.values() for p in points}))
    if len(all_times) < 3:
        raise DataError(f"{path} has fewer than three distinct times")
    step = float(np.median(np.diff(all_times)))
    breaks = [0, *(np.flatnonzero(np.diff(all_times) > 1.5 * step) + 1).tolist(), len(all_times)]
    out = []
    for key, points in groups.items():
        times = np.array([p[0] for p in points])
        if np.any(np.diff(times) <= 0):
            raise DataError(f"{path}: times of {'/'.join(key) or 'the file'} are not increasing")
        at = np.searchsorted(all_times, times)
        for j, i in enumerate(numeric):
            scale = 1e6 if header[i].endswith(("mbps", "Mbps")) else 1.0
            name = "/".join(key) if text else header[i]
            column = np.zeros(len(all_times))
            column[at] = np.array([p[1][j] for p in points]) * scale
            for part, (lo, hi) in enumerate(itertools.pairwise(breaks)):
                if hi - lo < 2:
                    continue
                suffix = f"#{part}" if len(breaks) > 2 else ""
                out.append(
                    Series(
                        f"{path.name}:{name}{suffix}",
                        source or path.stem,
                        step,
                        all_times[lo:hi],
                        column[lo:hi],
                    )
                )
    return out

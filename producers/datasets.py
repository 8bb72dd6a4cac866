"""Training and evaluation data: labelled flow records and bandwidth series from real files.

The classifier learns from labelled FlowRecords: captures with nDPI's report
beside them (``FILE.out``), attack captures labelled by their folder, the
CIC-IDS2017 and Westermo flow CSVs, and the simulator. Every record keeps the
name of the file (or simulation run) it came from, so that training and
evaluation can be split by file: flows of one capture never sit on both sides.

The forecaster learns from series made by the stream's own bin code
(``streams.bins``) over captures and simulations, and from public bandwidth
series (``models.seriescsv``).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from models.classes import CLASSES
from models.series import Series
from producers.exceptions import CaptureError, DatasetError
from producers.linkmap import single_link
from producers.replay import ReplaySource, ReplayStats, records_of
from producers.simulator import SimulationConfig, simulate
from streams.bins import ClosedBin, LinkBins
from streams.schemas import FlowRecord, TrafficClass

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")
#: Folder names whose captures are all attack traffic (``../shared/data/pcap/attack``).
ATTACK_FOLDERS = {"attack", "attacks"}


@dataclass(frozen=True)
class LabelledFlow:
    """A flow record with its ground truth and the file (or run) it came from."""

    group: str
    source: str  # ndpi, attack, capture, cicids2017, westermo, simulator
    record: FlowRecord


def data_files(path: Path) -> list[Path]:
    """Captures and flow CSVs at ``path`` (a file, or a folder searched recursively)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DatasetError(f"{path} is neither a file nor a folder")
    found = sorted(
        p for p in path.rglob("*") if p.is_file() and (_is_capture(p) or p.suffix == ".csv")
    )
    if not found:
        raise DatasetError(f"no captures (.pcap, .pcapng, .gz) or flow CSVs under {path}")
    return found


def _is_capture(path: Path) -> bool:
    return any(path.name.endswith(s) for s in CAPTURE_SUFFIXES)


def _source_of(path: Path) -> str:
    if path.suffix == ".csv":
        return "westermo" if "westermo" in path.parts else "cicids2017"
    if path.parent.name in ATTACK_FOLDERS:
        return "attack"
    if path.with_name(path.name + ".out").exists():
        return "ndpi"
    return "capture"


def labelled_flows(
    path: Path,
    root: Path | None = None,
    skipped: list[tuple[str, str]] | None = None,
    unlabelled: list[LabelledFlow] | None = None,
) -> Iterator[LabelledFlow]:
    """Every labelled record of the captures and CSVs at ``path``; unlabelled ones are skipped.

    A capture is labelled by the nDPI report beside it, or as attack traffic
    when it sits in an ``attack`` folder; a CSV by its label column (see
    ``producers.flowcsv``). ``root`` shortens the group names. A file that
    cannot be read at all (some nDPI test captures are fuzzed on purpose) is
    listed in ``skipped`` with the reason, and the others go on. The flow
    datasets' benign rows (no class: benign traffic of every kind) go to
    ``unlabelled`` when given: they measure false alarms.
    """
    for file in data_files(path):
        source = _source_of(file)
        group = str(file.relative_to(root)) if root and file.is_relative_to(root) else file.name
        if source == "westermo":
            # left, right and bottom saw the same network at the same time from three
            # switches (the same flows appear in two files): one group, never split
            group = "westermo"
        replay = ReplaySource(
            path=file,
            link_of=single_link("train"),
            csv_link="train",
            default_label=TrafficClass.ATTACK if source == "attack" else None,
        )
        try:
            for record in records_of(replay, ReplayStats()):
                if record.label is None:
                    if unlabelled is not None and source in ("cicids2017", "westermo"):
                        unlabelled.append(LabelledFlow(group, source, record))
                    continue
                if source == "cicids2017":
                    # one CSV per attack class, its flows from several capture days: the
                    # capture day is the group, so a day is held out whole
                    day = datetime.fromtimestamp(record.start or record.ts, UTC).date()
                    yield LabelledFlow(f"cicids2017/{day}", source, record)
                else:
                    yield LabelledFlow(group, source, record)
        except (CaptureError, DatasetError) as exc:
            if skipped is None:
                raise
            skipped.append((group, str(exc)))


def simulated_flows(runs: int, duration_s: float, seed: int = 0) -> Iterator[LabelledFlow]:
    """Labelled records of ``runs`` simulations of 3 links, each run its own group."""
    for run in range(runs):
        config = SimulationConfig(
            links=3, duration_s=duration_s, rate=60.0, seed=seed + run, attack_every_s=120.0
        )
        for record in simulate(config):
            yield LabelledFlow(f"simulator/seed-{seed + run}", "simulator", record)


def series_of_records(
    records: list[FlowRecord], name: str, source: str, bin_s: float = 1.0
) -> list[Series]:
    """One bandwidth series per link, by the stream's bin code; class mix from the labels."""
    by_link: dict[str, list[FlowRecord]] = {}
    for r in records:
        by_link.setdefault(r.link, []).append(r)
    out = []
    for link, mine in sorted(by_link.items()):
        bins = LinkBins.empty(bin_s=bin_s, lateness_s=2.0, window_bins=2)
        closed: list[ClosedBin] = []
        mix: dict[int, np.ndarray] = {}
        for r in mine:
            if bins.is_late(r.ts):
                continue
            closed += bins.add(r.ts, r.bytes, r.packets)
            index = int(r.ts // bin_s)
            row = mix.setdefault(index, np.zeros(len(CLASSES)))
            row[CLASSES.index(str(r.label or TrafficClass.OTHER))] += r.bytes
        if bins.max_ts_us is not None:
            closed += bins.advance(bins.max_ts_us / 1e6 + bin_s)
        dense = _dense(closed, bin_s)
        if len(dense) < 2:
            continue
        starts = np.array([b[0] for b in dense])
        zero = np.zeros(len(CLASSES))
        out.append(
            Series(
                name=f"{name}/{link}",
                source=source,
                bin_s=bin_s,
                start_s=starts,
                bps=np.array([8.0 * b[1] / bin_s for b in dense]),
                packets=np.array([b[2] for b in dense], dtype=np.float64),
                flows=np.array([b[3] for b in dense], dtype=np.float64),
                class_bytes=np.array([mix.get(round(s / bin_s), zero) for s in starts]),
            )
        )
    return out


def _dense(closed: list[ClosedBin], bin_s: float) -> list[tuple[float, int, int, int]]:
    """Closed bins with the long silences the bin code skips filled with zeros."""
    out: list[tuple[float, int, int, int]] = []
    for b in closed:
        while out and b.start_s - out[-1][0] > bin_s * 1.5:
            out.append((out[-1][0] + bin_s, 0, 0, 0))
        out.append((b.start_s, b.bytes, b.packets, b.flows))
    return out


def simulated_series(
    links: int, duration_s: float, seed: int = 0, bin_s: float = 1.0
) -> list[Series]:
    config = SimulationConfig(links=links, duration_s=duration_s, rate=40.0 * links, seed=seed)
    return series_of_records(list(simulate(config)), f"simulator/seed-{seed}", "simulator", bin_s)


def capture_series(path: Path, bin_s: float = 1.0) -> list[Series]:
    """The whole capture as one link's series (labels from its nDPI report, if any)."""
    replay = ReplaySource(path=path, link_of=single_link("capture"), csv_link="capture")
    records = list(records_of(replay, ReplayStats()))
    if not records:
        raise DatasetError(f"{path} holds no IP traffic")
    return series_of_records(records, path.name, "capture", bin_s)

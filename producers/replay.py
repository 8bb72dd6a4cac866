"""What `linkcast replay FILE` publishes: the records of a capture or a flow CSV, shaped in time.

A capture (pcap, pcapng, gzip of either) goes through the flow meter; a
``.csv`` through the dataset readers. Then ``--from``/``--to`` select a time
range and ``--loop N`` repeats the file N times, each pass shifted forward by
the length of the file plus one second, so that time only moves forward.
Labels come from the nDPI report beside a capture (``FILE.out``) when there is
one, or from ``--label`` for every record that has none.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from producers.capture import CaptureStats, Packet, read_packets
from producers.flowcsv import CsvStats, read_flow_csv
from producers.flowmeter import FlowMeter, MeterConfig
from producers.ndpi import ConversationKey, conversation, read_labels
from streams.schemas import FlowRecord, TrafficClass

LOOP_GAP_S = 1.0


@dataclass(frozen=True)
class ReplaySource:
    """Where records come from and how they are made."""

    path: Path
    link_of: Callable[[Packet], str]
    csv_link: str
    meter: MeterConfig = field(default_factory=MeterConfig)
    labels_path: Path | None = None  # an nDPI .out report; None: FILE.out if it exists
    default_label: TrafficClass | None = None

    @property
    def is_csv(self) -> bool:
        return self.path.suffix.lower() == ".csv"


@dataclass
class ReplayStats:
    """Counts over the whole replay, every pass included."""

    capture: CaptureStats = field(default_factory=CaptureStats)
    csv: CsvStats = field(default_factory=CsvStats)
    labelled: int = 0

    @property
    def skipped_bad(self) -> int:
        """Packets or rows dropped as damaged (non-IP traffic is not damage)."""
        return self.capture.bad + self.csv.bad + (1 if self.capture.truncated else 0)


def records_of(source: ReplaySource, stats: ReplayStats) -> Iterator[FlowRecord]:
    """One pass over the file, in ``ts`` order."""
    if source.is_csv:
        records: Iterator[FlowRecord] = iter(read_flow_csv(source.path, source.csv_link, stats.csv))
    else:
        records = _metered(source, stats.capture)
    labels = _labels(source)
    for record in records:
        label = record.label
        if label is None and labels:
            label = labels.get(_conversation_of(record))
        if label is None:
            label = source.default_label
        if label is not record.label:
            record = record.model_copy(update={"label": label})
        if label is not None:
            stats.labelled += 1
        yield record


def shaped(
    passes: Callable[[], Iterator[FlowRecord]],
    *,
    loops: int = 1,
    from_s: float | None = None,
    to_s: float | None = None,
) -> Iterator[FlowRecord]:
    """``loops`` passes of ``passes()``, each shifted after the previous, cut to [from_s, to_s).

    Pass k (from 0) has ``ts`` and ``start`` moved forward by k * (span +
    LOOP_GAP_S), the span being a pass's latest ``ts`` minus its earliest, so
    every ``ts`` of a pass is later than every ``ts`` of the one before, even
    when the file's own clock steps back. ``from_s`` (inclusive) and ``to_s``
    (exclusive) apply to the shifted ``ts``. An empty pass ends the loop.
    """
    shift = 0.0
    for _ in range(loops):
        first = last = None
        for record in passes():
            first = record.ts if first is None else min(first, record.ts)
            last = record.ts if last is None else max(last, record.ts)
            if shift:
                record = record.model_copy(
                    update={
                        "ts": round(record.ts + shift, 6),
                        "start": None if record.start is None else round(record.start + shift, 6),
                    }
                )
            if from_s is not None and record.ts < from_s:
                continue
            if to_s is not None and record.ts >= to_s:
                continue
            yield record
        if first is None or last is None:
            return
        shift += (last - first) + LOOP_GAP_S


def _metered(source: ReplaySource, stats: CaptureStats) -> Iterator[FlowRecord]:
    meter = FlowMeter(source.meter, source.link_of)
    for packet in read_packets(source.path, stats):
        yield from meter.add(packet)
    yield from meter.flush()


def _labels(source: ReplaySource) -> dict[ConversationKey, TrafficClass]:
    path = source.labels_path
    if path is None and not source.is_csv:
        beside = source.path.with_name(source.path.name + ".out")
        path = beside if beside.exists() else None
    return read_labels(path) if path is not None else {}


def _conversation_of(record: FlowRecord) -> ConversationKey:
    return conversation(
        record.proto or 0,
        (str(record.src), record.sport or 0),
        (str(record.dst), record.dport or 0),
    )

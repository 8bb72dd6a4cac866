"""When the worker acknowledges a flows record: once the state holding it is stored.

Faust commits a partition's offset up to the records its agent has
acknowledged. The worker keeps each link's bins in memory and writes the link
to its table only at a checkpoint after it closed bins (see streams.processor),
so it cannot acknowledge a record when it has read it: a crash would lose the
open bins.

Instead each flows event is held, in offset order per partition. Every
``every_s`` the worker waits for the producer to deliver what it has sent
(outputs and changelog) and acknowledges, in order, the held events below the
partition's ``safe_offset``: every record below it is in the stored state. A
crash then replays the records above it; the links' stored ``last_offset``
skips those already counted.

A link whose open bin stays open long (a quiet link during a backlog, or a
huge fleet where each link's event time moves slowly) would keep the safe
offset, and so the replay after a crash, far behind. So links still pending
``persist_after_s`` after a checkpoint are stored at the next drain, and all
pending links when a partition's held events span more than ``max_held`` offsets.

An event may stand for the records before it too: the direct reader holds
only the last record of each partition in a batch, acknowledged (so
committed) once every record up to it is stored. The span of offsets held
then leaves out the first batch's records before its last one (at most
``DRAIN_EVERY - 1``), so ``max_held`` is reached up to a batch later.

With ``exactly_once`` (see streams.app) every checkpoint is a Kafka
transaction per partition: ``persist_all`` stores every pending link, the
offsets below ``safe_offsets`` (taken right after that drain) are
acknowledged, and the consumer's commit sends them with the outputs and
changelog writes made since the last checkpoint, all or nothing.
"""

import contextlib
from collections import deque
from collections.abc import Iterator
from typing import Any, Protocol

DRAIN_EVERY = 1000  # messages handled between two drains at most
DRAIN_IDLE_S = 0.05  # and a timer drains what is left at least this often
CHECKPOINT_S = 1.0  # how often held records are acknowledged
PERSIST_AFTER_S = 10.0  # links pending this long are stored at the next checkpoint
MAX_HELD = 100_000  # offsets held per partition above which every pending link is stored


class Offsets(Protocol):
    """What the acknowledger needs of the processor."""

    def safe_offset(self, partition: int) -> int | None: ...

    def persist_before(self, partition: int, offset: int) -> None: ...


class Acknowledger:
    """Holds flows events until their records are stored, then acknowledges them."""

    def __init__(
        self,
        offsets: Offsets,
        every_s: float = CHECKPOINT_S,
        persist_after_s: float = PERSIST_AFTER_S,
        max_held: int = MAX_HELD,
    ) -> None:
        self.offsets = offsets
        self.every_s = every_s
        self.persist_after_s = persist_after_s
        self.max_held = max_held
        self.held: dict[int, deque[Any]] = {}  # partition -> events, oldest first
        self._latest: dict[int, Any] = {}  # partition -> the last event seen of it
        self._marks: dict[int, deque[tuple[float, int]]] = {}  # (checkpoint time, next offset)
        self._last_checkpoint_s = 0.0

    def hold(self, event: Any, *, current: bool = True) -> None:
        """Keep a flows event until its record is stored. ``current``: it is a Faust event,
        which table writes for its partition may go through (``writing_for``)."""
        partition = event.message.partition
        events = self.held.get(partition)
        if events is None:
            events = self.held[partition] = deque()
        events.append(event)
        if current:
            self._latest[partition] = event

    def seen(self, event: Any) -> None:
        """Note an event of a partition (a tick) that is acknowledged elsewhere."""
        self._latest[event.message.partition] = event

    def checkpoint_due(self, now_s: float) -> bool:
        return now_s - self._last_checkpoint_s >= self.every_s

    def persist_old(self, now_s: float) -> None:
        """Have the processor store, at its next drain, the links pending too long."""
        for partition, events in self.held.items():
            if events and events[-1].message.offset - events[0].message.offset >= self.max_held:
                self.offsets.persist_before(partition, events[-1].message.offset + 1)
                continue
            marks = self._marks.get(partition, deque())
            old = [offset for at_s, offset in marks if now_s - at_s >= self.persist_after_s]
            if old:
                self.offsets.persist_before(partition, old[-1])

    def persist_all(self) -> None:
        """Have the processor store, at its next drain, every link with records held."""
        for partition, events in self.held.items():
            if events:
                self.offsets.persist_before(partition, events[-1].message.offset + 1)

    def safe_offsets(self) -> dict[int, int | None]:
        """Each partition's safe offset now (take it where no message can come between)."""
        return {p: self.offsets.safe_offset(p) for p in self.held}

    async def acknowledge(
        self, stream: Any, now_s: float, safe_offsets: dict[int, int | None] | None = None
    ) -> int:
        """Acknowledge, in order, the held events whose records are stored; return how many.

        Call it after the producer has delivered everything sent so far.
        ``safe_offsets``: acknowledge below these (from ``safe_offsets``) instead of
        the processor's offsets now.
        """
        done = 0
        for partition, events in self.held.items():
            if safe_offsets is None:
                safe = self.offsets.safe_offset(partition)
            else:
                safe = safe_offsets.get(partition)
            if safe is not None:
                while events and events[0].message.offset < safe:
                    await stream.ack(events.popleft())
                    done += 1
            marks = self._marks.setdefault(partition, deque())
            if events:
                marks.append((now_s, events[-1].message.offset + 1))
            while marks and now_s - marks[0][0] > 2 * self.persist_after_s:
                marks.popleft()
        self._last_checkpoint_s = now_s
        return done

    @contextlib.contextmanager
    def writing_for(self, stream: Any, partition: int) -> Iterator[None]:
        """Table writes for links of ``partition`` inside the block.

        A Faust table sends a write to the changelog partition of the stream's
        current event, which after a batch may be another partition's. For the
        block, the current event is the last one seen of ``partition``.
        """
        event = self._latest.get(partition)
        previous = stream.current_event
        if event is not None:
            stream._set_current_event(event)
        try:
            yield
        finally:
            if event is not None:
                stream._set_current_event(previous)

    def forget(self) -> None:
        """Drop the held events (partitions revoked: Kafka delivers them again)."""
        self.held.clear()
        self._latest.clear()
        self._marks.clear()

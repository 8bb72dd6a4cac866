"""Flows records are acknowledged in order, and only once their links are stored."""

import asyncio
from dataclasses import dataclass, field

from streams.acks import Acknowledger


@dataclass
class Message:
    partition: int
    offset: int


@dataclass
class Event:
    message: Message


@dataclass
class Stream:
    acked: list[tuple[int, int]] = field(default_factory=list)
    current_event: object = None

    async def ack(self, event: Event) -> None:
        self.acked.append((event.message.partition, event.message.offset))

    def _set_current_event(self, event: object) -> None:
        self.current_event = event


@dataclass
class Offsets:
    safe: dict[int, int | None] = field(default_factory=dict)
    persisted_before: list[tuple[int, int]] = field(default_factory=list)

    def safe_offset(self, partition: int) -> int | None:
        return self.safe.get(partition)

    def persist_before(self, partition: int, offset: int) -> None:
        self.persisted_before.append((partition, offset))


def test_held_events_below_the_safe_offset_are_acknowledged_in_order():
    offsets, stream = Offsets({0: 3, 1: None}), Stream()
    acks = Acknowledger(offsets)
    for p, o in [(0, 0), (1, 0), (0, 1), (0, 2), (0, 3), (0, 4)]:
        acks.hold(Event(Message(p, o)))
    assert asyncio.run(acks.acknowledge(stream, 10.0)) == 3
    assert stream.acked == [(0, 0), (0, 1), (0, 2)]  # none of partition 1: nothing is safe
    offsets.safe[0] = 5
    asyncio.run(acks.acknowledge(stream, 11.0))
    assert stream.acked[3:] == [(0, 3), (0, 4)]


def test_links_pending_past_the_persist_time_are_stored():
    offsets, stream = Offsets({0: 0}), Stream()
    acks = Acknowledger(offsets, every_s=1.0, persist_after_s=5.0, max_held=1000)
    acks.hold(Event(Message(0, 0)))
    asyncio.run(acks.acknowledge(stream, 100.0))  # offset 1 is the head at 100 s
    acks.hold(Event(Message(0, 1)))
    acks.persist_old(104.0)
    assert offsets.persisted_before == []  # not old yet
    acks.persist_old(105.0)
    assert offsets.persisted_before == [(0, 1)]


def test_too_many_held_events_store_every_pending_link():
    offsets = Offsets({0: 0})
    acks = Acknowledger(offsets, max_held=3)
    for o in range(4):
        acks.hold(Event(Message(0, o)))
    acks.persist_old(0.0)
    assert offsets.persisted_before == [(0, 4)]


def test_events_standing_for_batches_count_the_offsets_they_span():
    """The direct reader holds the last record of each partition in a batch."""
    offsets, stream = Offsets({0: 0}), Stream()
    acks = Acknowledger(offsets, max_held=1000)
    acks.hold(Event(Message(0, 999)))  # a batch of offsets 0-999
    acks.persist_old(0.0)
    assert offsets.persisted_before == []
    acks.hold(Event(Message(0, 1999)))  # and one of 1000-1999
    acks.persist_old(0.0)
    assert offsets.persisted_before == [(0, 2000)]
    offsets.safe[0] = 1999  # the record at 1999 is not stored yet: only the first batch goes
    asyncio.run(acks.acknowledge(stream, 1.0))
    assert stream.acked == [(0, 999)]


def test_table_writes_run_under_an_event_of_their_partition():
    acks, stream = Acknowledger(Offsets()), Stream(current_event="tick of 2")
    event = Event(Message(1, 7))
    acks.hold(event)
    with acks.writing_for(stream, 1):
        assert stream.current_event is event
    assert stream.current_event == "tick of 2"


def test_an_exactly_once_checkpoint_stores_every_held_link_and_acknowledges_below_its_boundary():
    offsets, stream = Offsets({0: 2, 1: 1}), Stream()
    acks = Acknowledger(offsets)
    for p, o in [(0, 0), (1, 0), (0, 1)]:
        acks.hold(Event(Message(p, o)))
    acks.persist_all()
    assert offsets.persisted_before == [(0, 2), (1, 1)]  # every held record's link
    boundary = acks.safe_offsets()  # taken at the drain
    acks.hold(Event(Message(0, 2)))  # handled while the drain awaited the producer
    offsets.safe[0] = 3
    assert asyncio.run(acks.acknowledge(stream, 10.0, boundary)) == 3
    assert stream.acked == [(0, 0), (0, 1), (1, 0)]  # offset 2 waits for the next one

"""Fan-out of the live stream: each client has a bounded queue; a full queue drops its oldest.

``publish`` never waits: it appends the event to every matching client's
queue and wakes that client. A client that reads too slowly (or not at all)
loses its oldest events, never anyone else's, and is told how many it lost
before its next event. The event's JSON is made once, by the view, and shared.
"""

import asyncio
import contextlib
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass

from api.viewstate import StreamKind, Update


class TooManyClientsError(Exception):
    """The stream has as many clients as it may have."""


@dataclass(frozen=True)
class Event:
    seq: int
    update: Update


class Subscription:
    """One client's filter and queue."""

    def __init__(
        self, links: Collection[str] | None, kinds: Collection[StreamKind], max_queue: int
    ) -> None:
        self.links = frozenset(links) if links else None
        self.kinds = frozenset(kinds)
        self.queue: deque[Event] = deque(maxlen=max_queue)
        self.dropped_unreported = 0
        self.dropped_total = 0
        self._wake = asyncio.Event()

    def wants(self, update: Update) -> bool:
        return update.kind in self.kinds and (self.links is None or update.link in self.links)

    def offer(self, event: Event) -> bool:
        """Queue ``event``; True if the oldest queued event was dropped to make room."""
        full = len(self.queue) == self.queue.maxlen
        if full:
            self.dropped_unreported += 1
            self.dropped_total += 1
        self.queue.append(event)  # a full deque drops its oldest itself
        self._wake.set()
        return full

    async def wait(self, timeout_s: float) -> None:
        """Return when an event is queued, or after ``timeout_s``."""
        if self.queue:
            return
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout_s)

    def take(self) -> list[Event]:
        events = list(self.queue)
        self.queue.clear()
        return events

    def take_dropped(self) -> int:
        n, self.dropped_unreported = self.dropped_unreported, 0
        return n


class Hub:
    def __init__(self, max_queue: int, max_clients: int) -> None:
        self.max_queue = max_queue
        self.max_clients = max_clients
        self.clients: set[Subscription] = set()
        self.published = 0
        self.dropped = 0  # events dropped from any client's queue, ever
        self._seq = 0

    def subscribe(
        self, links: Collection[str] | None, kinds: Collection[StreamKind]
    ) -> Subscription:
        if len(self.clients) >= self.max_clients:
            raise TooManyClientsError(f"the stream already has {self.max_clients} clients")
        subscription = Subscription(links, kinds, self.max_queue)
        self.clients.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self.clients.discard(subscription)

    def publish(self, update: Update) -> None:
        self._seq += 1
        self.published += 1
        event = Event(self._seq, update)
        for client in self.clients:
            if client.wants(update) and client.offer(event):
                self.dropped += 1

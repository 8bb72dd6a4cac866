"""The live stream's fan-out: bounded queues that drop their oldest, filters, client limit."""

import asyncio

import pytest

from api.hub import Hub, TooManyClientsError
from api.viewstate import Update


def update(link: str, n: int, kind: str = "window") -> Update:
    return Update(kind, link, b'{"n": %d}' % n)  # type: ignore[arg-type]  # a StreamKind


def test_a_full_queue_drops_its_oldest_and_counts_it():
    hub = Hub(max_queue=3, max_clients=5)
    slow = hub.subscribe(None, ["window"])
    for n in range(5):
        hub.publish(update("a", n))
    assert [e.update.data for e in slow.take()] == [b'{"n": 2}', b'{"n": 3}', b'{"n": 4}']
    assert (slow.take_dropped(), slow.take_dropped(), slow.dropped_total) == (2, 0, 2)
    assert hub.dropped == 2


def test_a_slow_client_costs_no_other_client_an_event():
    hub = Hub(max_queue=2, max_clients=5)
    slow = hub.subscribe(None, ["window"])
    quick = hub.subscribe(None, ["window"])
    got = []
    for n in range(10):
        hub.publish(update("a", n))
        got += [e.update.data for e in quick.take()]  # reads after each event
    assert len(got) == 10
    assert quick.dropped_total == 0
    assert slow.dropped_total == 8


def test_clients_get_only_the_links_and_kinds_they_asked_for():
    hub = Hub(max_queue=10, max_clients=5)
    alerts_of_b = hub.subscribe(["b"], ["alert"])
    everything = hub.subscribe(None, ["window", "forecast", "alert"])
    hub.publish(update("a", 1, "alert"))
    hub.publish(update("b", 2, "window"))
    hub.publish(update("b", 3, "alert"))
    assert [e.update.data for e in alerts_of_b.take()] == [b'{"n": 3}']
    assert [e.seq for e in everything.take()] == [1, 2, 3]


def test_the_hub_refuses_clients_over_its_limit_and_a_leaving_client_frees_a_place():
    hub = Hub(max_queue=1, max_clients=1)
    first = hub.subscribe(None, ["window"])
    with pytest.raises(TooManyClientsError):
        hub.subscribe(None, ["window"])
    hub.unsubscribe(first)
    hub.subscribe(None, ["window"])


def test_a_waiting_client_wakes_on_an_event_and_gives_up_after_its_timeout():
    async def scenario() -> tuple[float, list[bytes]]:
        hub = Hub(max_queue=4, max_clients=2)
        client = hub.subscribe(None, ["window"])
        loop = asyncio.get_running_loop()
        started = loop.time()
        await client.wait(0.05)  # nothing comes
        idle = loop.time() - started
        loop.call_later(0.01, hub.publish, update("a", 1))
        await asyncio.wait_for(client.wait(10), timeout=5)
        return idle, [e.update.data for e in client.take()]

    idle, got = asyncio.run(scenario())
    assert idle >= 0.04
    assert got == [b'{"n": 1}']

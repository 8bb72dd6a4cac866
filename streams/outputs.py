"""Output messages handed to Kafka's producer a batch per partition, not one by one.

Under ``at_least_once`` the worker publishes every drain's outputs (a
classification per flow, and per closed bin a window, a forecast and a link
state) straight to aiokafka's producer. ``send`` costs about 9 µs of CPU per
message in Python (a future, a partition lookup and an append to the
accumulator each); filling a ``BatchBuilder`` per partition and handing it
over with ``send_batch`` costs about 2.5 µs. Both were measured with an ad hoc
script: 100,000 messages of 200 bytes over 1,000 keys to a local broker.

The partitions are Kafka's default ones (``KeyPartitioner``), so a link's
messages land where any client would put them, in order. Delivery is
awaited as before, by the producer's ``flush`` at the checkpoint (which,
as with ``send``, does not fail on a batch that failed).

Two differences from ``send``: aiokafka hands a batch over only once the
partition's previous one has left the accumulator, so a drain can wait up to
the linger time per partition; and no size check per message is made before
the broker's (``send`` refuses a message over ``max_request_size``), so an
oversized output would fail its whole batch. linkcast's outputs are a few KB
at most.
"""

from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder

from streams.partitioner import KeyPartitioner


async def send_batched(
    producer: AIOKafkaProducer,
    partitioner: KeyPartitioner,
    topic: str,
    messages: Iterable[tuple[bytes, bytes | None]],
) -> int:
    """Hand ``messages`` (key, value) for ``topic`` to ``producer`` in a batch per partition,
    in their order within each partition; return how many batches were handed over."""
    partitions = sorted(await producer.partitions_for(topic))
    batches: dict[int, BatchBuilder] = {}
    handed = 0
    for key, value in messages:
        partition = partitioner(key, partitions, partitions)
        batch = batches.get(partition)
        if batch is None:
            batch = batches[partition] = producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:
            await producer.send_batch(batch, topic, partition=partition)  # full: on with a new one
            handed += 1
            batch = batches[partition] = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None)  # an empty batch takes any one
    for partition, batch in batches.items():
        await producer.send_batch(batch, topic, partition=partition)
        handed += 1
    return handed

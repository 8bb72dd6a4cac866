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

import asyncio
from collections.abc import Iterable, Mapping

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

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
    by_partition: dict[int, list[tuple[bytes, bytes | None]]] = {}
    for key, value in messages:
        partition = partitioner(key, partitions, partitions)
        held = by_partition.get(partition)
        if held is None:
            held = by_partition[partition] = []
        held.append((key, value))
    return len(await send_to_partitions(producer, topic, by_partition))


async def send_to_partitions(
    producer: AIOKafkaProducer,
    topic: str,
    by_partition: Mapping[int, Iterable[tuple[bytes, bytes | None]]],
) -> list[tuple[int, int, "asyncio.Future[RecordMetadata]"]]:
    """Hand each partition's messages (key, value) of ``topic`` to ``producer``, in order,
    in as few batches as fit. Per batch: its partition, how many messages it holds, and
    the future of its delivery (the offset of its first message once delivered)."""
    handed = []
    for partition, messages in by_partition.items():
        batch = producer.create_batch()
        count = 0
        for key, value in messages:
            if batch.append(key=key, value=value, timestamp=None) is None:
                # full: hand it over and go on with a new one, which takes any one message
                future = await producer.send_batch(batch, topic, partition=partition)
                handed.append((partition, count, future))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
                count = 0
            count += 1
        if count:
            future = await producer.send_batch(batch, topic, partition=partition)
            handed.append((partition, count, future))
    return handed

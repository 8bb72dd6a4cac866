"""The worker's partitioner puts every key where Kafka's default partitioner does."""

import random

from aiokafka.partitioner import DefaultPartitioner

from streams.partitioner import KeyPartitioner


def test_every_key_goes_where_the_default_partitioner_puts_it():
    rng = random.Random(7)
    keys = [rng.randbytes(rng.randint(0, 40)) for _ in range(2000)] + [b"edge-1", "é".encode()]
    ours, default = KeyPartitioner(max_keys=500), DefaultPartitioner()
    for count in (1, 3, 4, 12):
        partitions = list(range(count))
        for key in keys * 2:  # the second time from the remembered hashes (or afresh)
            assert ours(key, partitions, partitions) == default(key, partitions, partitions)
    assert len(ours._hashes) <= 500


def test_a_message_without_a_key_goes_to_an_available_partition():
    ours = KeyPartitioner()
    assert {ours(None, [0, 1, 2, 3], [2]) for _ in range(20)} == {2}

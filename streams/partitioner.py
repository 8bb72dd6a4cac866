"""Kafka's default partitioning of keyed messages, with each key's hash remembered.

Every output message of the worker is keyed by its link, and Kafka's clients
put a key in partition ``murmur2(key) mod partitions`` (so a link's messages
stay in order, and any consumer can find them). aiokafka computes murmur2 in
Python, for every message: at one classification per flow, about 3 % of the
worker's time in a py-spy profile of ``linkcast soak``. A worker sees the same
few thousand links again and again, so the hash is worth remembering.
"""

from aiokafka.partitioner import DefaultPartitioner, murmur2

MAX_KEYS = 1 << 18  # keys remembered at most (31 MiB with 20-byte keys); then afresh


class KeyPartitioner:
    """aiokafka's ``DefaultPartitioner`` (the same partition for every key), remembering
    each key's hash. Pass it as Faust's ``producer_partitioner``."""

    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        self.max_keys = max_keys
        self._hashes: dict[bytes, int] = {}
        self._unkeyed = DefaultPartitioner()

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return self._unkeyed(key, all_partitions, available)
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= self.max_keys:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]

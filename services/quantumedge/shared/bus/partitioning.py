"""Which partition a keyed record goes to: the same rule on Kafka and on the in-process bus.

Kafka's default (murmur2 of the key) put BTCUSDT and ETHUSDT both on partition 2 of 3, so one consumer did
all the work and two partitions stayed empty. The configured symbols instead take partitions in the order
they are configured (symbol i -> partition i mod n); any other key (an unconfigured symbol, control.v1's
halt and limits keys, an order id) keeps Kafka's murmur2 hash. A key always maps to the same partition for
a given symbol list and partition count, so one symbol's records stay in order (the bus's contract).
Every process of a deployment must share QE_SYMBOLS; a new symbol appended at the end moves no other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kafka.partitioner.default import DefaultPartitioner, murmur2


class SymbolPartitioner(DefaultPartitioner):
    """Configured symbols spread round-robin in configuration order; other keys hashed as Kafka does."""

    def __init__(self, symbols: Sequence[str] = ()) -> None:
        super().__init__()
        # dict.fromkeys: a symbol listed twice keeps its first slot.
        self._slots = {symbol.encode(): slot for slot, symbol in enumerate(dict.fromkeys(symbols))}

    def index(self, key: bytes, partitions: int) -> int:
        """The partition (0..partitions-1) of a non-empty key."""
        slot = self._slots.get(key)
        if slot is not None:
            return slot % partitions
        return (murmur2(key) & 0x7FFFFFFF) % partitions

    def partition(
        self, topic: str, key: Any, serialized_key: bytes | None, value: Any, serialized_value: Any, cluster: Any
    ) -> int:
        """kafka-python's Partitioner interface (the producer calls it for every record without a partition)."""
        if serialized_key is None:
            return super().partition(topic, key, serialized_key, value, serialized_value, cluster)
        if topic not in cluster.topics():
            raise ValueError(f"Topic {topic} not found in ClusterMetadata")
        all_partitions = sorted(cluster.partitions_for_topic(topic))
        return all_partitions[self.index(serialized_key, len(all_partitions))]

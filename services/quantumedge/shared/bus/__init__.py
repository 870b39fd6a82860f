"""The message bus: one interface, a Kafka backend and an in-process backend."""

from __future__ import annotations

from quantumedge.shared.bus.base import Bus, BusError, Consumer, Record
from quantumedge.shared.bus.memory import MemoryBus
from quantumedge.shared.config import Settings


def make_bus(settings: Settings) -> Bus:
    """The bus the settings ask for: in-process for the embedded default, Kafka otherwise."""
    if settings.bus == "memory":
        return MemoryBus(partitions=settings.kafka.partitions)
    from quantumedge.shared.bus.kafka import KafkaBus

    return KafkaBus(settings.kafka)


__all__ = ["Bus", "BusError", "Consumer", "MemoryBus", "Record", "make_bus"]

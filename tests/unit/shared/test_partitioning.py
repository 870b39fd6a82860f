"""Symbols spread over a topic's partitions, deterministically, the same way on both buses."""

from __future__ import annotations

from kafka.partitioner.default import murmur2

from quantumedge.settings import Settings
from quantumedge.shared.bus import MemoryBus
from quantumedge.shared.bus.partitioning import SymbolPartitioner
from quantumedge.v1 import market_pb2

SYMBOLS = Settings().symbols


def test_the_configured_symbols_land_on_different_partitions() -> None:
    assert len(SYMBOLS) == 2
    # The problem this fixes: Kafka's hash puts both default symbols on one partition of three.
    assert len({(murmur2(s.encode()) & 0x7FFFFFFF) % 3 for s in SYMBOLS}) == 1
    part = SymbolPartitioner(SYMBOLS)
    assert len({part.index(s.encode(), 3) for s in SYMBOLS}) == 2


def test_a_key_always_gets_the_same_partition_and_other_keys_keep_kafkas_hash() -> None:
    part, again = SymbolPartitioner(SYMBOLS), SymbolPartitioner(list(SYMBOLS))
    for partitions in (1, 2, 3, 7):
        for key in (*[s.encode() for s in SYMBOLS], b"SOLUSDT", b"halt", b"limits"):
            assert part.index(key, partitions) == again.index(key, partitions)
            assert 0 <= part.index(key, partitions) < partitions
    assert part.index(b"halt", 3) == (murmur2(b"halt") & 0x7FFFFFFF) % 3
    # A symbol listed twice keeps its first slot; one appended moves none already configured.
    grown = SymbolPartitioner([*SYMBOLS, SYMBOLS[0], "SOLUSDT"])
    assert [grown.index(s.encode(), 3) for s in SYMBOLS] == [part.index(s.encode(), 3) for s in SYMBOLS]


def test_memory_bus_uses_the_same_partitions_and_keeps_each_symbols_order() -> None:
    bus = MemoryBus(partitions=3, symbols=SYMBOLS)
    for i in range(30):
        symbol = SYMBOLS[i % 2]
        bus.publish("t", symbol, market_pb2.MarketEvent(symbol=symbol, sequence=i, trade=market_pb2.Trade(price=1.0)))
    consumer = bus.consumer("g", ["t"], from_beginning=True)
    seen: dict[str, list[int]] = {}
    partitions: dict[str, set[int]] = {}
    for record in consumer.poll(0.1, max_records=7) + consumer.poll(0.1):
        event = market_pb2.MarketEvent.FromString(record.value)
        seen.setdefault(event.symbol, []).append(event.sequence)
        partitions.setdefault(event.symbol, set()).add(record.partition)
    part = SymbolPartitioner(SYMBOLS)
    assert partitions == {s: {part.index(s.encode(), 3)} for s in SYMBOLS}
    assert seen == {s: list(range(k, 30, 2)) for k, s in enumerate(SYMBOLS)}

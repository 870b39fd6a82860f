"""On a real broker the configured symbols land on different partitions, the same ones the in-process bus
picks, and a consumer group sees each symbol's records in the order they were published."""

from __future__ import annotations

import time
import uuid

import pytest

from quantumedge.settings import Settings
from quantumedge.shared import topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.config import KafkaSettings
from quantumedge.v1 import market_pb2

pytestmark = [pytest.mark.integration]
SYMBOLS = Settings().symbols


def test_symbols_spread_over_partitions_in_order(kafka_bootstrap: str) -> None:
    settings = KafkaSettings(
        bootstrap=kafka_bootstrap, allow_plaintext=True, topic_prefix=f"part-{uuid.uuid4().hex[:8]}."
    )
    bus = KafkaBus(settings, symbols=SYMBOLS)
    try:
        bus.ensure_topics([topics.TRADES])
        consumer = bus.consumer("part-check", [topics.TRADES], from_beginning=True)
        total = 200
        for i in range(total):
            symbol = SYMBOLS[i % 2]
            event = market_pb2.MarketEvent(symbol=symbol, sequence=i, trade=market_pb2.Trade(price=1.0, quantity=1.0))
            bus.publish(topics.TRADES, symbol, event)
        bus.flush()
        seen: dict[str, list[int]] = {}
        partitions: dict[str, set[int]] = {}
        deadline = time.monotonic() + 60
        while sum(map(len, seen.values())) < total and time.monotonic() < deadline:
            for record in consumer.poll(0.5, max_records=37):
                event = market_pb2.MarketEvent.FromString(record.value)
                seen.setdefault(event.symbol, []).append(event.sequence)
                partitions.setdefault(event.symbol, set()).add(record.partition)
        consumer.close()
    finally:
        bus.close()
    memory = MemoryBus(partitions=settings.partitions, symbols=SYMBOLS)
    assert partitions == {s: {memory.partition_for(s.encode(), topics.TRADES)} for s in SYMBOLS}
    assert len({p for ps in partitions.values() for p in ps}) == len(SYMBOLS)
    assert seen == {s: list(range(k, total, 2)) for k, s in enumerate(SYMBOLS)}

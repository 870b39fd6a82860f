"""Publish/consume throughput of both bus backends with real protobuf payloads."""

from __future__ import annotations

import time
import uuid

from quantumedge.shared import topics
from quantumedge.shared.bus import Bus, MemoryBus
from quantumedge.shared.config import KafkaSettings
from quantumedge.v1 import market_pb2


def _events(n: int) -> list[market_pb2.MarketEvent]:
    return [
        market_pb2.MarketEvent(
            symbol="BTCUSDT" if i % 2 else "ETHUSDT",
            sequence=i,
            exchange_time_ns=i,
            top_of_book=market_pb2.TopOfBook(bid_price=100.0, bid_quantity=1.0, ask_price=100.1, ask_quantity=2.0),
        )
        for i in range(n)
    ]


def _roundtrip(bus: Bus, n: int) -> dict[str, float]:
    events = _events(n)
    consumer = bus.consumer("bench", [topics.BOOK], from_beginning=True)
    t0 = time.perf_counter()
    for ev in events:
        bus.publish(topics.BOOK, ev.symbol, ev)
    bus.flush()
    t1 = time.perf_counter()
    got = 0
    while got < n:
        batch = consumer.poll(1.0, 5000)
        if not batch and time.perf_counter() - t1 > 60:
            break
        got += len(batch)
    consumer.commit()
    t2 = time.perf_counter()
    consumer.close()
    return {"publish_per_s": n / (t1 - t0), "consume_per_s": got / max(t2 - t1, 1e-9), "consumed": got}


def bench_bus(kafka_bootstrap: str | None) -> dict[str, float]:
    out = {f"memory_{k}": v for k, v in _roundtrip(MemoryBus(), 100_000).items()}
    if kafka_bootstrap:
        from quantumedge.shared.bus.kafka import KafkaBus

        bus = KafkaBus(
            KafkaSettings(
                bootstrap=kafka_bootstrap, allow_plaintext=True, topic_prefix=f"bench-{uuid.uuid4().hex[:6]}."
            )
        )
        bus.ensure_topics()
        try:
            out |= {f"kafka_{k}": v for k, v in _roundtrip(bus, 20_000).items()}
        finally:
            bus.close()
    for key, value in out.items():
        print(f"  bus {key:<28} {value:>14,.0f}")
    return out

"""Seconds to resume after a broker outage: a consumer loop relays ingest.book.v1 to ingest.trades.v1 on its own
real broker, killed for 5 s and then for 30 s; figures from the moment the broker answers again.

Its own broker, never the shared bench one: this one is killed."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid

from quantumedge.shared import topics
from quantumedge.shared.bus import BusUnavailable
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.bus.loop import ConsumerLoop
from quantumedge.shared.config import KafkaSettings
from quantumedge.v1 import market_pb2

OUTAGES_S = (5.0, 30.0)


def _event(seq: int) -> market_pb2.MarketEvent:
    book = market_pb2.TopOfBook(bid_price=100.0, bid_quantity=1.0, ask_price=100.1, ask_quantity=2.0)
    return market_pb2.MarketEvent(symbol="BTCUSDT", sequence=seq, exchange_time_ns=seq + 1, top_of_book=book)


def _feed(bus: KafkaBus, stop: threading.Event, sent: list[int]) -> None:
    seq = 0
    while not stop.wait(0.02):
        bus.publish(topics.BOOK, "BTCUSDT", _event(seq))
        sent.append(seq)
        seq += 1
        with contextlib.suppress(BusUnavailable):  # queued in the producer; delivered once the broker is back
            bus.flush(1.0)


def _resume_after(broker: object, relay: KafkaBus, handled: list[tuple[float, int]], outage_s: float) -> float:
    """Kill the broker for outage_s; seconds from its answering again to the relay's first record after."""
    broker.kill()
    time.sleep(outage_s)
    broker.restart()
    answered = time.monotonic()
    deadline = answered + 120
    while relay.outage.down or not any(t > answered for t, _ in handled):
        if time.monotonic() > deadline:
            raise RuntimeError("the relay did not resume within 120 s of the broker answering")
        time.sleep(0.05)
    return min(t for t, _ in handled if t > answered) - answered


def bench_outage() -> None:
    from tests.harness import LocalKafka

    with LocalKafka() as broker:
        settings = KafkaSettings(
            bootstrap=broker.bootstrap, allow_plaintext=True, topic_prefix=f"ob-{uuid.uuid4().hex[:6]}."
        )
        feeder, relay = KafkaBus(settings), KafkaBus(settings)
        relay.ensure_topics([topics.BOOK, topics.TRADES])
        handled: list[tuple[float, int]] = []

        def relay_one(event: market_pb2.MarketEvent, _record: object) -> None:
            relay.publish(topics.TRADES, event.symbol, event)
            handled.append((time.monotonic(), event.sequence))

        loop = ConsumerLoop(relay, "outage-bench", {topics.BOOK: relay_one}, from_beginning=True)
        loop.start()
        stop, sent = threading.Event(), []
        thread = threading.Thread(target=_feed, args=(feeder, stop, sent), daemon=True)
        thread.start()
        resumed: dict[float, float] = {}
        for outage_s in OUTAGES_S:
            time.sleep(3)
            resumed[outage_s] = _resume_after(broker, relay, handled, outage_s)
        time.sleep(3)
        stop.set()
        thread.join(10)
        feeder.flush(30)
        time.sleep(3)
        loop.stop()
        relay.flush(30)
        relayed = [market_pb2.MarketEvent.FromString(r.value).sequence for r in relay.read_all(topics.TRADES)]
        feeder.close()
        relay.close()
    for outage_s, resumed_s in resumed.items():
        print(f"  broker outage {outage_s:.0f} s: relay resumed {resumed_s:.2f} s after the broker answered again")
    print(f"  {relay.outage.outages} outages logged once each; the last lasted {relay.outage.last_duration_s:.1f} s")
    missing, doubled = len(set(sent) - set(relayed)), len(relayed) - len(set(relayed))
    print(f"  records: {len(sent)} sent, {len(set(relayed))} relayed, {missing} missing, {doubled} delivered twice")

"""Seconds to resume after a broker outage: a consumer loop relays ingest.book.v1 to ingest.trades.v1 on its own
real broker, which is killed for 5 s and restarted; figures from the moment the broker answers again.

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

OUTAGE_S = 5.0


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
        time.sleep(3)
        broker.kill()
        time.sleep(OUTAGE_S)
        broker.restart()
        answered = time.monotonic()
        deadline = answered + 120
        while relay.outage.down or not any(t > answered for t, _ in handled):
            if time.monotonic() > deadline:
                raise RuntimeError("the relay did not resume within 120 s of the broker answering")
            time.sleep(0.05)
        resumed_s = min(t for t, _ in handled if t > answered) - answered
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
    print(f"  broker outage {OUTAGE_S:.0f} s: relay resumed {resumed_s:.2f} s after the broker answered again")
    print(f"  outage logged once, lasted {relay.outage.last_duration_s:.1f} s in the relay's view")
    missing, doubled = len(set(sent) - set(relayed)), len(relayed) - len(set(relayed))
    print(f"  records: {len(sent)} sent, {len(set(relayed))} relayed, {missing} missing, {doubled} delivered twice")

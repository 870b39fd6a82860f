"""The outage state (pure, clock injected) and the consumer loop waiting out a broker that stops answering.

The flaky bus here is the in-process bus with a broker-down switch: the unit proof of the loop's rule
(nothing handled or committed while down, nothing lost after); the real broker is killed in
tests/e2e/test_broker_outage.py."""

from __future__ import annotations

import time

from quantumedge.shared import topics
from quantumedge.shared.bus import BusError, BusUnavailable, MemoryBus
from quantumedge.shared.bus.loop import ConsumerLoop
from quantumedge.shared.bus.outage import Outage
from quantumedge.v1 import market_pb2
from tests.support.waiting import wait_for


def test_outage_starts_with_the_first_failing_source_and_ends_with_the_last() -> None:
    now = [100.0]
    outage = Outage(clock=lambda: now[0])
    outage.failed("probe", "refused")
    outage.failed("consumer risk", BusUnavailable("timeout"))
    assert outage.down and outage.outages == 1
    now[0] = 107.5
    outage.ok("probe")
    assert outage.down  # the consumer still fails
    outage.ok("consumer risk")
    assert not outage.down and outage.last_duration_s == 7.5 and outage.outages == 1
    outage.ok("probe")  # a source that was not failing changes nothing
    assert not outage.down and outage.outages == 1


class _DownableBus(MemoryBus):
    def __init__(self) -> None:
        super().__init__()
        self.broker_down = False
        self.fatal: BusError | None = None

    def flush(self, timeout_s: float = 10.0) -> None:
        if self.fatal is not None:
            raise self.fatal
        if self.broker_down:
            raise BusUnavailable("kafka flush failed: KafkaTimeoutError")
        super().flush(timeout_s)


def _event(seq: int) -> market_pb2.MarketEvent:
    book = market_pb2.TopOfBook(bid_price=1.0, bid_quantity=1.0, ask_price=1.1, ask_quantity=1.0)
    return market_pb2.MarketEvent(symbol="BTCUSDT", sequence=seq, exchange_time_ns=seq + 1, top_of_book=book)


def test_the_loop_waits_out_an_outage_and_loses_nothing() -> None:
    bus = _DownableBus()
    seen: list[int] = []
    loop = ConsumerLoop(bus, "relay", {topics.BOOK: lambda ev, _r: seen.append(ev.sequence)}, probe_every_s=0.05)
    loop.start()
    try:
        bus.publish(topics.BOOK, "BTCUSDT", _event(0))
        wait_for(lambda: seen == [0], 5, "the first record")
        bus.broker_down = True
        wait_for(lambda: bus.outage.down, 5, "the outage noticed by the idle loop's probe")
        bus.publish(topics.BOOK, "BTCUSDT", _event(1))
        time.sleep(0.5)
        assert seen == [0], "a record was handled while the bus was down"
        bus.broker_down = False
        wait_for(lambda: seen == [0, 1] and not bus.outage.down, 10, "the loop resumed by itself")
        assert loop.alive and loop.error is None and bus.outage.outages == 1
    finally:
        loop.stop()


def test_an_unrecoverable_bus_error_stops_the_loop_and_names_it() -> None:
    bus = _DownableBus()
    loop = ConsumerLoop(bus, "relay", {topics.BOOK: lambda _ev, _r: None}, probe_every_s=0.05)
    loop.start()
    bus.fatal = BusError("kafka publish not acknowledged: TopicAuthorizationFailedError")
    wait_for(lambda: not loop.alive, 5, "the loop to stop")
    assert isinstance(loop.error, BusError) and not isinstance(loop.error, BusUnavailable)
    assert not bus.outage.down

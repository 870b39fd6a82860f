"""Bad input loses nothing: undecodable or unhandleable records go to dlq.v1 and the loop goes on."""

from __future__ import annotations

import time

from quantumedge.shared import topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.shared.bus.loop import ConsumerLoop
from quantumedge.v1 import dlq_pb2, market_pb2


def _wait(predicate, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def _tick(seq: int, symbol: str = "BTCUSDT") -> market_pb2.MarketEvent:
    return market_pb2.MarketEvent(symbol=symbol, sequence=seq, trade=market_pb2.Trade(price=100.0, quantity=1.0))


def test_undecodable_and_failing_records_are_dead_lettered_and_the_loop_goes_on() -> None:
    bus = MemoryBus()
    seen: list[int] = []

    def handle(event: market_pb2.MarketEvent, _record) -> None:
        if event.sequence == 2:
            raise ValueError("price feed says no")
        seen.append(event.sequence)

    loop = ConsumerLoop(bus, "inference", {topics.TRADES: handle}, from_beginning=True)
    loop.start()
    try:
        bus.publish(topics.TRADES, "BTCUSDT", _tick(1))
        bus.publish(topics.TRADES, "BTCUSDT", b"\xff\xfe not protobuf")
        bus.publish(topics.TRADES, "BTCUSDT", market_pb2.MarketEvent(sequence=9))  # parses, but no symbol/payload
        bus.publish(topics.TRADES, "BTCUSDT", _tick(2))
        bus.publish(topics.TRADES, "BTCUSDT", _tick(3))
        _wait(lambda: seen == [1, 3] and len(bus.read_all(topics.DLQ)) == 3)
        _wait(lambda: bus.total_lag() == 0)
    finally:
        loop.stop()

    letters = [dlq_pb2.DeadLetter.FromString(r.value) for r in bus.read_all(topics.DLQ)]
    by_offset = {letter.source_offset: letter for letter in letters}
    assert by_offset[1].value == b"\xff\xfe not protobuf"
    assert "undecodable" in by_offset[1].reason
    assert "without symbol, payload" in by_offset[2].reason
    assert "price feed says no" in by_offset[3].reason and by_offset[3].error_type == "ValueError"
    assert all(letter.source_topic == topics.TRADES and letter.consumer_group == "inference" for letter in letters)
    assert loop.alive is False and loop.error is None


def test_offsets_are_committed_only_after_handling() -> None:
    bus = MemoryBus()
    handled: list[int] = []
    loop = ConsumerLoop(bus, "risk", {topics.TRADES: lambda e, _r: handled.append(e.sequence)}, from_beginning=True)
    loop.start()
    for i in range(10):
        bus.publish(topics.TRADES, "ETHUSDT", _tick(i, "ETHUSDT"))
    _wait(lambda: len(handled) == 10 and bus.total_lag() == 0)
    loop.stop()
    # A new member of the same group starts after what was committed: nothing is handled twice.
    again = bus.consumer("risk", [topics.TRADES], from_beginning=True)
    assert again.poll(0.1) == []

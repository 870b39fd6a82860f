"""A backlog of books for priority tests: record i carries its index in its exchange time (t0 + i * step_ns), so
what a consumer had applied at some moment can be read back from the market time it holds."""

from __future__ import annotations

from quantumedge.shared import topics
from quantumedge.shared.bus.base import Bus
from quantumedge.v1 import market_pb2

MID, STEP_NS = 50_000.0, 1_000


def flood_event(symbol: str, t0: int, i: int) -> market_pb2.MarketEvent:
    """Book i of the flood: asks rising by 0.001 a record (no price jump), a 1.0 spread."""
    ask = MID + 0.5 + i * 0.001
    return market_pb2.MarketEvent(
        symbol=symbol,
        exchange_time_ns=t0 + i * STEP_NS,
        receive_time_ns=t0 + i * STEP_NS,
        source="synthetic",
        top_of_book=market_pb2.TopOfBook(bid_price=ask - 1.0, bid_quantity=5.0, ask_price=ask, ask_quantity=5.0),
    )


def publish_flood(bus: Bus, symbol: str, t0: int, count: int) -> None:
    for i in range(count):
        bus.publish(topics.BOOK, symbol, flood_event(symbol, t0, i))


def flood_index(t0: int, market_ns: int) -> int:
    """Which record of the flood a market time came from."""
    return (market_ns - t0) // STEP_NS

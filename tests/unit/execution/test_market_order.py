"""Execution applies a poll's market records in exchange-time order, not topic by topic.

A poll hands records over partition by partition (the in-process bus walks its topics in name order, so a book
comes before a trade; Kafka gives no order across topics either). A stop triggered by a trade must fill on the
book that trade met, as the backtest (exchange-time order) fills it, never on a book stamped after it."""

from __future__ import annotations

import time

from quantumedge.execution.service import ExecutionService
from quantumedge.shared import topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.v1 import execution_pb2
from tests.support.execution_builders import decision, top, trade
from tests.support.signing import signed
from tests.support.waiting import wait_for
from tests.unit.execution.test_service import SYMBOL, bus, service

__all__ = ["bus", "service"]  # pytest fixtures imported from test_service

BID, ASK = 49_999.5, 50_000.5
STOP = 49_900.0
LOW_BID = 49_800.0  # the later book's bid: where the stop would fill if that book were applied first


def _fills(bus: MemoryBus) -> list[execution_pb2.ExecutionReport]:
    reports = [execution_pb2.ExecutionReport.FromString(r.value) for r in bus.read_all(topics.REPORTS)]
    return [r for r in reports if r.HasField("fill")]


def _handled(service: ExecutionService, n: int) -> None:
    loop = service._market_loop
    assert loop is not None
    wait_for(lambda: loop.handled + loop.coalesced >= n, what=f"{n} market records handled")


def test_a_stop_fills_on_the_book_its_trade_met_not_on_a_later_one(bus: MemoryBus, service: ExecutionService) -> None:
    t0 = time.time_ns()
    bus.publish(topics.BOOK, SYMBOL, top(t0, BID, 2.0, ASK, 2.0))
    bus.publish(topics.TRADES, SYMBOL, trade(t0 + 1, 49_950.0))  # a last trade above the stop: no touch fallback
    _handled(service, 2)
    entry = decision("ord-1", qty=0.001, reference=ASK, tp=50_100.0, sl=STOP)
    bus.publish(topics.DECISIONS, SYMBOL, signed(entry))
    wait_for(lambda: len(_fills(bus)) == 1, what="the entry fill")
    wait_for(lambda: any(o.client_order_id.endswith("-sl") for o in service.engine.orders.values()), what="the SL")
    # One poll: both records become visible at once (the bus lock is reentrant), so the market loop gets
    # [book @t0+3 s, trade @t0+2 s] in topic order. The trade (below the stop) comes first in exchange time.
    with bus._cond:
        bus.publish(topics.BOOK, SYMBOL, top(t0 + 3_000_000_000, LOW_BID, 2.0, LOW_BID + 1.0, 2.0))
        bus.publish(topics.TRADES, SYMBOL, trade(t0 + 2_000_000_000, 49_890.0))
    _handled(service, 4)
    fills = wait_for(lambda: [f for f in _fills(bus) if f.order.client_order_id.endswith("-sl")], what="the SL fill")
    sl = next(o for o in service.engine.orders.values() if o.client_order_id.endswith("-sl"))
    assert [(f.order.client_order_id, f.fill.price) for f in fills] == [(sl.client_order_id, BID)]
    assert sl.intent_id == "ord-1"

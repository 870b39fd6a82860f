"""Poisoned values through the execution service itself (issue 15): NaN, ±inf, 1e300, negative and 2^63-1
values in market events and in signed, approved decisions. Each is dead-lettered with its reason code, no
order reaches the venue for a poisoned decision, marks and reported equity stay finite, and the service
still fills the next good decision.

The checks themselves are unit-tested as pure functions in tests/unit/shared/test_bounds.py; this is the
service's consumer path, where an ask of inf once made execution publish equity = inf."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from quantumedge.execution.domain.orders import OrderStatus
from quantumedge.execution.service import ExecutionService
from quantumedge.shared import bounds, topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.v1 import dlq_pb2, market_pb2, risk_pb2
from tests.support.execution_builders import decision
from tests.support.signing import signed
from tests.unit.execution.test_service import MID, SYMBOL, Reports, book_event, bus, publish_book, service, wait_for

__all__ = ["bus", "service"]  # pytest fixtures imported from test_service

BIG = float(2**63 - 1)
CODES = {bounds.NON_FINITE, bounds.OUT_OF_RANGE, bounds.NOT_POSITIVE, bounds.PRICE_JUMP, bounds.BAD_TIME}


def _book(field: str, value: float) -> market_pb2.MarketEvent:
    ev = book_event()
    setattr(ev.top_of_book, field, value)
    return ev


def _trade(field: str, value: float) -> market_pb2.MarketEvent:
    ev = book_event()
    ev.trade.CopyFrom(market_pb2.Trade(price=MID, quantity=0.5, trade_id=7))
    setattr(ev.trade, field, value)
    return ev


BAD_MARKET: list[tuple[str, market_pb2.MarketEvent]] = [
    (topics.BOOK, _book("ask_price", math.inf)),
    (topics.BOOK, _book("ask_price", 1e300)),
    (topics.BOOK, _book("bid_price", math.nan)),
    (topics.BOOK, _book("bid_quantity", -5.0)),
    (topics.BOOK, _book("ask_quantity", BIG)),
    (topics.TRADES, _trade("price", -1e308)),
    (topics.TRADES, _trade("quantity", math.nan)),
]


def _poisoned_decision(n: int, poison: Callable[[risk_pb2.RiskDecision], None]) -> risk_pb2.RiskDecision:
    d = decision(f"poison-{n}", qty=0.001, reference=MID)
    poison(d)
    return signed(d)  # signed by risk's key: the signature holds, the values do not


def _set(path: str, value: float) -> Callable[[risk_pb2.RiskDecision], None]:
    def poison(d: risk_pb2.RiskDecision) -> None:
        target = d
        *parents, leaf = path.split(".")
        for name in parents:
            target = getattr(target, name)
        setattr(target, leaf, value)

    return poison


BAD_DECISIONS = [
    _set("intent.quantity", math.nan),
    _set("intent.quantity", math.inf),
    _set("intent.quantity", -0.5),
    _set("intent.quantity", 1e300),
    _set("intent.reference_price", math.inf),
    _set("intent.take_profit_price", math.nan),
    _set("intent.time_stop_ns", 2**63 - 1),
]


def _letters(bus: MemoryBus, *sources: str) -> list[dlq_pb2.DeadLetter]:
    letters = [dlq_pb2.DeadLetter.FromString(r.value) for r in bus.read_all(topics.DLQ)]
    return [d for d in letters if d.source_topic in sources]


def test_poisoned_market_and_decisions_are_dead_lettered_and_trading_goes_on(
    bus: MemoryBus, service: ExecutionService
) -> None:
    reports = Reports(bus)
    publish_book(bus, service)
    for topic, event in BAD_MARKET:
        bus.publish(topic, SYMBOL, event)
    for n, poison in enumerate(BAD_DECISIONS):
        bus.publish(topics.DECISIONS, SYMBOL, _poisoned_decision(n, poison))
    bus.flush()
    expected = len(BAD_MARKET) + len(BAD_DECISIONS)
    letters = wait_for(
        lambda: (found := _letters(bus, *topics.MARKET, topics.DECISIONS)) and len(found) >= expected and found,
        what="every poisoned record dead-lettered",
    )
    assert len(letters) == expected and {d.reason_code for d in letters} <= CODES
    assert sum(d.source_topic == topics.DECISIONS for d in letters) == len(BAD_DECISIONS)
    # Each poisoned entry is recorded REJECTED (so risk releases it) and never sent.
    poisoned = [o for o in service.engine.orders.values() if o.intent_id.startswith("poison-")]
    assert len(poisoned) == len(BAD_DECISIONS) and all(
        o.status is OrderStatus.REJECTED and not o.venue_order_id for o in poisoned
    )
    assert service.engine.counters["orders_placed"] == 0
    assert all(math.isfinite(v) for v in service.engine.marks.values())

    good = signed(decision("after-poison", qty=0.001, reference=MID))
    bus.publish(topics.DECISIONS, SYMBOL, good)
    order = wait_for(
        lambda: next((o for o in service.engine.orders.values() if o.intent_id == "after-poison"), None),
        what="the good decision's order",
    )
    fills = wait_for(lambda: reports.fills(order.client_order_id), what="its fill")
    assert sum(f.quantity for f in fills) == pytest.approx(0.001)
    for r in reports.drain():
        assert math.isfinite(r.equity) and math.isfinite(r.realized_pnl_delta) and math.isfinite(r.fee_delta)
        assert bounds.check_report(r) is None  # risk takes every report, the REJECTED answers included

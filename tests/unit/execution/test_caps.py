"""Execution's own hard caps hold whatever risk approved: refused with a report and a reason code."""

from __future__ import annotations

from decimal import Decimal

import pytest

from quantumedge.execution.domain.orders import OrderStatus
from quantumedge.execution.engine import (
    CAP_ORDER_NOTIONAL,
    CAP_POSITION_NOTIONAL,
    EngineConfig,
    ExecutionEngine,
    ListEmitter,
)
from quantumedge.execution.paper import PaperConfig
from quantumedge.execution.venue import PaperVenue
from quantumedge.settings import load_settings
from quantumedge.v1 import common_pb2, execution_pb2, risk_pb2
from tests.support.execution_builders import BOOK_ASKS, BOOK_BIDS, SYMBOL, decision, depth

D = Decimal


def capped(order_cap: float = 50.0, position_cap: float = 80.0) -> tuple[ExecutionEngine, PaperVenue, ListEmitter]:
    venue, emitter = PaperVenue(PaperConfig()), ListEmitter()
    config = EngineConfig(
        symbols=(SYMBOL,), max_order_notional=D(repr(order_cap)), max_position_notional=D(repr(position_cap))
    )
    engine = ExecutionEngine(venue, emitter, config, clock=lambda: venue.now_ns() or 1)
    engine.on_market(depth(1_000, BOOK_BIDS, BOOK_ASKS))  # mid ~ 100
    return engine, venue, emitter


def _refusal(emitter: ListEmitter, intent_id: str) -> execution_pb2.Order:
    (report,) = [r for r in emitter.reports if r.order.intent_id == intent_id]
    return report.order


def test_an_approved_entry_over_the_order_cap_is_refused_and_reported() -> None:
    engine, venue, emitter = capped(order_cap=50.0)
    # Risk approved 1 BTC-like size: 60x what execution allows per order.
    order = engine.on_decision(decision("big", qty=30.0, reference=100.0))
    assert order.status is OrderStatus.REJECTED and order.reject_code == CAP_ORDER_NOTIONAL
    assert list(venue.sim.orders()) == []  # never reached the venue
    reported = _refusal(emitter, "big")
    assert reported.status == execution_pb2.ORDER_STATUS_REJECTED and reported.reject_code == CAP_ORDER_NOTIONAL
    assert engine.counters["rejects"] == 1 and engine.counters["orders_placed"] == 0
    assert engine.on_decision(decision("big", qty=30.0)) is order  # redelivered: the same refusal


def test_the_position_cap_counts_what_is_held_and_working() -> None:
    engine, _, _ = capped(order_cap=50.0, position_cap=80.0)
    first = engine.on_decision(decision("a", qty=0.45, reference=100.0))
    assert first.status is OrderStatus.FILLED
    second = engine.on_decision(decision("b", qty=0.45, reference=100.0))  # 0.9 held -> about 90 > 80
    assert second.status is OrderStatus.REJECTED and second.reject_code == CAP_POSITION_NOTIONAL
    assert engine.positions[SYMBOL].quantity == D("0.45")


def test_a_limit_far_from_the_market_is_valued_at_the_dearer_price() -> None:
    engine, _, _ = capped(order_cap=50.0, position_cap=1_000.0)
    # A SELL limit below the market trades at the market: 0.52 x 100 = 52 is over the cap, 0.52 x 90 is not.
    sell = decision(
        "low-sell",
        side=common_pb2.SIDE_SELL,
        qty=0.52,
        order_type=risk_pb2.ORDER_TYPE_LIMIT,
        limit=90.0,
        tif=risk_pb2.TIME_IN_FORCE_GTC,
        reference=100.0,
    )
    assert engine.on_decision(sell).reject_code == CAP_ORDER_NOTIONAL


def test_exits_are_never_capped() -> None:
    engine, _, _ = capped(order_cap=50.0, position_cap=60.0)
    engine.on_decision(decision("in", qty=0.45, reference=100.0))
    out = engine.on_decision(decision("out", side=common_pb2.SIDE_SELL, qty=0, kind=risk_pb2.INTENT_KIND_EXIT))
    assert out.status is OrderStatus.FILLED and engine.positions[SYMBOL].quantity == 0


def test_the_caps_come_from_settings_and_must_be_positive() -> None:
    config = EngineConfig.from_settings(
        load_settings(execution={"max_order_notional": 123, "max_position_notional": 456})
    )
    assert (config.max_order_notional, config.max_position_notional) == (D("123"), D("456"))
    from quantumedge.shared.config import ConfigError

    with pytest.raises(ConfigError, match="max_order_notional"):
        load_settings(execution={"max_order_notional": 0})


def test_an_entry_whose_protection_is_already_crossed_is_not_sent() -> None:
    """Risk priced the target and stop from a book that lagged the market: a long's take-profit below the
    market (or its stop above it) would be refused by the venue and the position closed at once."""
    from quantumedge.execution.engine import PROTECTION_OFF_MARKET

    engine, venue, emitter = capped(order_cap=1_000.0, position_cap=1_000.0)
    stale = engine.on_decision(decision("stale-tp", qty=0.1, reference=98.0, tp=99.0, sl=97.0))  # mid ~ 100
    assert stale.status is OrderStatus.REJECTED and stale.reject_code == PROTECTION_OFF_MARKET
    crossed_stop = engine.on_decision(decision("stale-sl", qty=0.1, reference=102.0, tp=103.0, sl=101.0))
    assert crossed_stop.status is OrderStatus.REJECTED and crossed_stop.reject_code == PROTECTION_OFF_MARKET
    assert list(venue.sim.orders()) == [] and _refusal(emitter, "stale-tp").reject_code == PROTECTION_OFF_MARKET
    fine = engine.on_decision(decision("fine", qty=0.1, reference=100.0, tp=101.0, sl=99.0))
    assert fine.status is OrderStatus.FILLED and fine.reject_code == ""

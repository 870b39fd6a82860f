"""The gaps issue 15 found in protection, one scenario each: no position is left unprotected by an exit
that did not close it all, by an entry still filling, or by a time stop too large to add up."""

from __future__ import annotations

from decimal import Decimal

from quantumedge.execution import ids
from quantumedge.execution.errors import VenueRejected
from quantumedge.execution.orders import OrderRole, OrderStatus
from quantumedge.execution.protection import MAX_TIME_STOP_NS
from quantumedge.v1 import common_pb2, risk_pb2
from tests.unit.execution.builders import BOOK_ASKS, BOOK_BIDS, SYMBOL, decision, depth, paper_engine, trade

D = Decimal
SELL_EXIT = {"side": common_pb2.SIDE_SELL, "kind": risk_pb2.INTENT_KIND_EXIT}


def _open_protection(engine):
    return [o for o in engine.list_orders(open_only=True) if o.role in (OrderRole.TAKE_PROFIT, OrderRole.STOP_LOSS)]


def test_an_exit_the_venue_refuses_after_its_protection_was_cancelled_protects_the_position_again() -> None:
    engine, venue, _ = paper_engine()
    engine.on_market(depth(1_000, BOOK_BIDS, BOOK_ASKS))
    entry = engine.on_decision(decision("A", tp=105.0, sl=95.0))
    assert len(_open_protection(engine)) == 2
    real_submit = venue.submit

    def refuse_exits(request):
        if request.client_order_id.startswith(ids.PREFIX + ids.EXIT):
            raise VenueRejected("-2010", "Account has insufficient balance for requested action.")
        return real_submit(request)

    venue.submit = refuse_exits
    exit_order = engine.on_decision(decision("X", qty=0.1, **SELL_EXIT))
    assert exit_order.status is OrderStatus.REJECTED
    legs = _open_protection(engine)
    assert engine.positions[SYMBOL].quantity == D("0.1")
    assert {o.client_order_id for o in legs} == set(ids.protective_ids(entry.client_order_id, 1)[:2])
    assert all(o.quantity == D("0.1") for o in legs)
    engine.on_market(trade(2_000, 94.0, 1.0))  # the stop placed again closes it
    assert engine.positions[SYMBOL].quantity == 0


def test_a_partial_exit_protects_what_is_left() -> None:
    engine, _, _ = paper_engine()
    engine.on_market(depth(1_000, BOOK_BIDS, BOOK_ASKS))
    engine.on_decision(decision("A", qty=0.3, tp=105.0, sl=95.0))
    exit_order = engine.on_decision(decision("X", qty=0.1, **SELL_EXIT))
    assert exit_order.status is OrderStatus.FILLED
    assert engine.positions[SYMBOL].quantity == D("0.2")
    legs = _open_protection(engine)
    assert len(legs) == 2 and all(o.quantity == D("0.2") for o in legs)
    engine.on_market(trade(2_000, 106.0, 1.0))  # the target placed again closes the rest
    assert engine.positions[SYMBOL].quantity == 0


def test_a_partially_filled_gtc_entry_is_protected_for_what_has_filled_and_protection_grows() -> None:
    engine, _, _ = paper_engine()
    engine.on_market(depth(1_000, BOOK_BIDS, BOOK_ASKS))
    entry = engine.on_decision(
        decision("A", qty=0.2, order_type=risk_pb2.ORDER_TYPE_LIMIT, limit=99.0, tp=105.0, sl=95.0)
    )
    assert entry.status is OrderStatus.NEW
    engine.on_market(trade(2_000, 98.9, 0.08))  # part of the resting entry fills
    assert entry.status is OrderStatus.PARTIALLY_FILLED and entry.filled_quantity == D("0.08")
    legs = _open_protection(engine)
    assert len(legs) == 2 and all(o.quantity == D("0.08") for o in legs)
    engine.on_market(trade(3_000, 98.9, 1.0))  # the rest fills
    assert entry.status is OrderStatus.FILLED
    legs = _open_protection(engine)
    assert len(legs) == 2 and all(o.quantity == D("0.2") for o in legs)
    assert entry.protected_quantity == D("0.2") and entry.protection_generation == 1
    engine.on_market(trade(4_000, 94.0, 1.0))
    assert engine.positions[SYMBOL].quantity == 0


def test_a_time_stop_of_2_pow_63_minus_1_is_capped_and_the_position_is_protected() -> None:
    engine, _, emitter = paper_engine()
    engine.on_market(depth(1_000, BOOK_BIDS, BOOK_ASKS))
    entry = engine.on_decision(decision("A", tp=105.0, sl=95.0, time_stop_ns=2**63 - 1))
    assert entry.time_stop_ns == MAX_TIME_STOP_NS
    assert 0 < entry.time_stop_deadline_ns < 2**63 - 1
    assert len(_open_protection(engine)) == 2
    assert emitter.states[-1][1].order.time_stop_deadline_ns in (0, entry.time_stop_deadline_ns)

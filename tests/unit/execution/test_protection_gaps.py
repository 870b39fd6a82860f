"""The gaps issue 15 found in protection, one scenario each: no position is left unprotected by an exit
that did not close it all, by an entry still filling, or by a time stop too large to add up."""

from __future__ import annotations

import contextlib
from decimal import Decimal

from quantumedge.execution.domain import ids
from quantumedge.execution.domain.orders import OrderRole, OrderStatus
from quantumedge.execution.domain.protection import MAX_TIME_STOP_NS
from quantumedge.execution.errors import VenueRejected
from quantumedge.v1 import common_pb2, risk_pb2
from tests.support.execution_builders import BOOK_ASKS, BOOK_BIDS, SYMBOL, decision, depth, paper_engine, trade

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


def _restarted(emitter, venue=None):
    from quantumedge.execution.engine import EngineConfig, ExecutionEngine, ListEmitter
    from quantumedge.execution.venue import PaperVenue

    venue = venue or PaperVenue()
    emitter2 = ListEmitter()
    engine = ExecutionEngine(venue, emitter2, EngineConfig(symbols=(SYMBOL,)), clock=lambda: venue.now_ns() or 1)
    engine.restore((key, record.SerializeToString()) for key, record in emitter.states)
    engine.reconcile()
    return engine, venue, emitter2


def test_a_paper_restart_keeps_a_trailing_stops_ratchet() -> None:
    engine, _, emitter = paper_engine()
    engine.on_market(depth(1_000, BOOK_BIDS, BOOK_ASKS))
    engine.on_decision(decision("A", trailing_bps=100.0))  # 1 % below the best price since it rested
    engine.on_market(trade(2_000, 100.0, 0.01))
    engine.on_market(trade(3_000, 110.0, 0.01))  # the ratchet moves up: the stop is now 108.9
    engine.on_market(trade(4_000, 109.5, 0.01))
    assert engine.positions[SYMBOL].quantity == D("0.1")
    engine2, _, _ = _restarted(emitter)
    engine2.on_market(trade(5_000, 109.5, 0.01))  # placed again after the restart
    engine2.on_market(depth(5_500, [(108.4, 1.0)], [(108.6, 1.0)]))
    engine2.on_market(trade(6_000, 108.5, 0.01))  # below 108.9: stopped out, though far above 100 x 0.99
    assert engine2.positions[SYMBOL].quantity == 0


def test_exit_retries_survive_a_restart() -> None:
    from quantumedge.execution.errors import VenueUnavailable

    engine, venue, emitter = paper_engine()
    engine.on_market(depth(1_000, BOOK_BIDS, BOOK_ASKS))
    engine.on_decision(decision("A", tp=120.0, sl=80.0, time_stop_ns=1_000_000))

    def down(request):
        raise VenueUnavailable("503", "venue down")

    venue.submit = down
    engine.on_market(depth(2_000_000, BOOK_BIDS, BOOK_ASKS))  # the time stop fires; its exit is not placed
    assert engine.positions[SYMBOL].quantity == D("0.1") and not _open_protection(engine)
    engine2, _, _ = _restarted(emitter)
    engine2.on_market(depth(5_000_000_000, BOOK_BIDS, BOOK_ASKS))  # after the restart, past the retry delay
    assert engine2.positions[SYMBOL].quantity == 0


def test_stand_in_credits_survive_a_restart() -> None:
    from quantumedge.execution.domain.orders import Fill, OrderUpdate
    from quantumedge.execution.engine import EngineConfig, ExecutionEngine, ListEmitter
    from tests.unit.execution.test_oversell_and_duplicate_guards import ScriptedVenue

    venue = ScriptedVenue()
    emitter = ListEmitter()
    engine = ExecutionEngine(venue, emitter, EngineConfig(symbols=(SYMBOL,)), clock=lambda: 1)
    order = engine.on_decision(decision("A", qty=1.0, order_type=risk_pb2.ORDER_TYPE_LIMIT, limit=99.0))
    cid = order.client_order_id
    venue.trades = [Fill(cid, "t1", D("99"), D("0.1"))]
    venue.trades_ok = False
    engine.reconcile()  # the trade history is unreadable: a stand-in fill counts 0.1
    assert order.synthetic_credit == D("0.1")
    venue.trades_ok = True
    engine2 = ExecutionEngine(venue, ListEmitter(), EngineConfig(symbols=(SYMBOL,)), clock=lambda: 1)
    engine2.restore((key, record.SerializeToString()) for key, record in emitter.states)
    # The real trade arrives after the restart: it is the one the stand-in counted, not a second one.
    engine2.on_update(OrderUpdate(cid, SYMBOL, OrderStatus.PARTIALLY_FILLED, "1", venue.trades[0], D("0.1"), D("9.9")))
    assert engine2.orders[cid].filled_quantity == D("0.1") and engine2.positions[SYMBOL].quantity == D("0.1")


def test_intents_saved_but_never_sent_are_sent_or_decided_again_after_a_restart() -> None:
    from quantumedge.execution.domain.protection import NOT_SENT

    engine, venue, emitter = paper_engine()
    engine.on_market(depth(1_000, BOOK_BIDS, BOOK_ASKS))
    engine.on_decision(decision("A"))
    crashed = []

    def crash(request):  # persisted PENDING, then the process died before the request left
        crashed.append(request.client_order_id)
        raise SystemExit

    venue.submit = crash
    for intent_id, kw in (("X", {"qty": 0.1, **SELL_EXIT}), ("B", {})):
        with contextlib.suppress(SystemExit):
            engine.on_decision(decision(intent_id, **kw))
    assert len(crashed) == 2
    engine2, _, _ = _restarted(emitter)
    exit_order, entry = (engine2.orders[c] for c in crashed)
    assert entry.status is OrderStatus.REJECTED and entry.reject_code == NOT_SENT
    assert exit_order.status is OrderStatus.EXPIRED
    engine2.on_market(depth(2_000, BOOK_BIDS, BOOK_ASKS))  # prices again: the exit goes, once
    assert engine2.positions[SYMBOL].quantity == 0
    sent_exits = [o for o in engine2.list_orders() if o.role is OrderRole.EXIT and o.filled_quantity > 0]
    assert len(sent_exits) == 1

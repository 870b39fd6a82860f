"""The execution engine on the paper venue: idempotent intents, protection, halts, time stops, recovery."""

from __future__ import annotations

from decimal import Decimal

from quantumedge.execution.domain import ids
from quantumedge.execution.domain.orders import OrderRole, OrderStatus
from quantumedge.execution.engine import ExecutionEngine, ListEmitter
from quantumedge.execution.venue import PaperVenue
from quantumedge.v1 import common_pb2, control_pb2, risk_pb2
from tests.support.execution_builders import BOOK_ASKS, BOOK_BIDS, SYMBOL, decision, depth, paper_engine, top, trade

D = Decimal

SELL = common_pb2.SIDE_SELL


def booked():
    engine, venue, emitter = paper_engine()
    engine.on_market(depth(1_000, BOOK_BIDS, BOOK_ASKS))
    return engine, venue, emitter


def fills_of(emitter: ListEmitter, cid: str):
    return [r.fill for r in emitter.reports if r.HasField("fill") and r.order.client_order_id == cid]


def test_a_redelivered_intent_makes_one_order() -> None:
    engine, venue, _ = booked()
    first = engine.on_decision(decision("i-1"))
    again = engine.on_decision(decision("i-1"))
    assert again is first
    assert [o.client_order_id for o in venue.sim.orders()] == [first.client_order_id]
    assert engine.counters["duplicates_ignored"] == 1 and engine.counters["orders_placed"] == 1
    assert engine.positions[SYMBOL].quantity == D("0.1")


def test_only_approved_decisions_with_an_intent_are_traded() -> None:
    engine, venue, _ = booked()
    assert engine.on_decision(decision("i-1", approved=False)) is None
    assert engine.on_decision(risk_pb2.RiskDecision(decision_id="d", symbol=SYMBOL, approved=True)) is None
    assert list(venue.sim.orders()) == [] and engine.counters["ignored_decisions"] == 2


def test_client_order_id_is_short_and_allowed() -> None:
    cid = ids.order_id(ids.ENTRY, "some-very-long-intent-identifier-" * 4)
    assert ids.ALLOWED.match(cid) and len(cid) <= 36
    assert all(len(x) <= 36 and ids.ALLOWED.match(x) for x in ids.protective_ids(cid))
    assert cid == ids.order_id(ids.ENTRY, "some-very-long-intent-identifier-" * 4)


def test_partial_fills_add_up_in_reports_order_and_position() -> None:
    engine, _, emitter = booked()
    order = engine.on_decision(decision("i-1", qty=0.1))
    got = fills_of(emitter, order.client_order_id)
    assert len(got) == 3
    assert sum(D(repr(f.quantity)) for f in got) == order.filled_quantity == order.quantity == D("0.1")
    assert engine.positions[SYMBOL].quantity == D("0.1")
    statuses = [r.order.status for r in emitter.reports if r.order.client_order_id == order.client_order_id]
    assert statuses[:4] == [
        OrderStatus.PENDING,
        OrderStatus.NEW,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.PARTIALLY_FILLED,
    ]
    assert OrderStatus.FILLED in statuses
    realized = sum(r.realized_pnl_delta for r in emitter.reports)
    assert abs(realized - float(engine.positions[SYMBOL].realized_pnl)) < 1e-12


def test_entry_gets_an_oco_and_the_take_profit_cancels_the_stop() -> None:
    engine, _, _ = booked()
    entry = engine.on_decision(decision("i-1", tp=101.0, sl=99.0))
    tp_id, sl_id, list_id = ids.protective_ids(entry.client_order_id)
    tp, sl = engine.orders[tp_id], engine.orders[sl_id]
    assert (tp.role, sl.role) == (OrderRole.TAKE_PROFIT, OrderRole.STOP_LOSS)
    assert tp.group_id == sl.group_id == list_id and tp.quantity == sl.quantity == D("0.1")
    assert tp.price == D("101") and sl.stop_price == D("99") and tp.status is sl.status is OrderStatus.NEW
    engine.on_market(trade(2_000, 101.5))
    assert tp.status is OrderStatus.FILLED and sl.status is OrderStatus.EXPIRED
    position = engine.positions[SYMBOL]
    assert position.flat
    # Bought 0.03@100 + 0.05@100.1 + 0.02@100.2, sold 0.1@101; fees 10 bps both ways.
    gross = D("0.1") * D("101") - (D("0.03") * D("100.0") + D("0.05") * D("100.1") + D("0.02") * D("100.2"))
    fees = (D("10.009") + D("10.1")) * D("0.001")
    assert position.realized_pnl == gross - fees


def test_the_stop_loss_exits_and_cancels_the_take_profit() -> None:
    engine, _, _ = booked()
    entry = engine.on_decision(decision("i-1", tp=101.0, sl=99.0))
    tp_id, sl_id, _ = ids.protective_ids(entry.client_order_id)
    engine.on_market(trade(2_000, 98.5))
    assert engine.orders[sl_id].status is OrderStatus.FILLED
    assert engine.orders[tp_id].status is OrderStatus.EXPIRED
    assert engine.positions[SYMBOL].flat


def test_protection_the_venue_refuses_means_exit_at_market() -> None:
    engine, venue, _ = paper_engine()
    # The venue has the book but the engine no mark yet, so only the venue can see that the stop is above
    # the market (with a mark the entry is not even sent: test_caps); it refuses the OCO.
    venue.on_market(depth(1_000, BOOK_BIDS, BOOK_ASKS))
    entry = engine.on_decision(decision("i-1", tp=105.0, sl=100.5))
    _, sl_id, _ = ids.protective_ids(entry.client_order_id)
    assert engine.orders[sl_id].status is OrderStatus.REJECTED
    assert "relationship" in engine.orders[sl_id].reject_message
    assert engine.positions[SYMBOL].flat


def test_trailing_stop_alone_is_one_stop_order() -> None:
    engine, _, _ = booked()
    entry = engine.on_decision(decision("i-1", trailing_bps=50))
    _, sl_id, _ = ids.protective_ids(entry.client_order_id)
    stop = engine.orders[sl_id]
    assert stop.trailing_stop_bps == D(50) and stop.group_id == "" and stop.status is OrderStatus.NEW
    engine.on_market(trade(2_000, 103.0))
    engine.on_market(trade(3_000, 102.4))  # 102.485 is the trailed stop
    assert stop.status is OrderStatus.FILLED and engine.positions[SYMBOL].flat


def test_time_stop_cancels_protection_and_exits() -> None:
    engine, _, _ = booked()
    entry = engine.on_decision(decision("i-1", tp=105.0, sl=95.0, time_stop_ns=60_000))
    assert entry.time_stop_deadline_ns == 1_000 + 60_000
    engine.on_market(top(30_000, 99.9, 1, 100.0, 1))
    assert not engine.positions[SYMBOL].flat
    engine.on_market(top(61_000, 99.9, 1, 100.0, 1))
    tp_id, sl_id, _ = ids.protective_ids(entry.client_order_id)
    assert engine.orders[tp_id].status is OrderStatus.CANCELED and engine.orders[sl_id].status is OrderStatus.CANCELED
    assert engine.orders[ids.order_id(ids.TIME_STOP, entry.client_order_id)].status is OrderStatus.FILLED
    assert engine.positions[SYMBOL].flat and entry.time_stop_deadline_ns == 0


def test_exit_intent_replaces_protection_and_sells_what_is_held() -> None:
    engine, _, _ = booked()
    entry = engine.on_decision(decision("i-1", tp=105.0, sl=95.0))
    exit_order = engine.on_decision(decision("x-1", side=SELL, qty=0, kind=risk_pb2.INTENT_KIND_EXIT))
    assert exit_order.role is OrderRole.EXIT and exit_order.status is OrderStatus.FILLED
    assert exit_order.quantity == D("0.1") and engine.positions[SYMBOL].flat
    tp_id, _, _ = ids.protective_ids(entry.client_order_id)
    assert engine.orders[tp_id].status is OrderStatus.CANCELED


def test_exit_without_a_position_is_refused() -> None:
    engine, _, _ = booked()
    order = engine.on_decision(decision("x-1", side=SELL, kind=risk_pb2.INTENT_KIND_EXIT))
    assert order.status is OrderStatus.REJECTED and order.reject_code == "NO_POSITION"


def test_filter_violation_is_refused_with_the_exchange_code_and_not_retried() -> None:
    engine, venue, _ = booked()
    order = engine.on_decision(decision("i-1", qty=0.00001))  # notional 0.001 < 5
    assert order.status is OrderStatus.REJECTED
    assert (order.reject_code, order.reject_message) == ("-1013", "Filter failure: NOTIONAL")
    engine.on_decision(decision("i-1", qty=0.00001))
    assert list(venue.sim.orders()) == []


def test_halt_refuses_entries_cancels_entry_orders_keeps_protection_and_flattens_once() -> None:
    engine, venue, _ = booked()
    protected = engine.on_decision(decision("i-1", tp=105.0, sl=95.0))
    resting = engine.on_decision(
        decision("i-2", order_type=risk_pb2.ORDER_TYPE_LIMIT, limit=95.0, tif=risk_pb2.TIME_IN_FORCE_GTC)
    )
    assert resting.status is OrderStatus.NEW
    engine.on_halt(control_pb2.HaltState(halted=True, cancel_open_orders=True), cause="ev-1", reason="test")
    tp_id, _, _ = ids.protective_ids(protected.client_order_id)
    assert resting.status is OrderStatus.CANCELED and engine.orders[tp_id].status is OrderStatus.NEW
    refused = engine.on_decision(decision("i-3"))
    assert refused.status is OrderStatus.REJECTED and refused.reject_code == "HALTED"
    engine.on_halt(control_pb2.HaltState(halted=True, flatten=True), cause="ev-2")
    assert engine.positions[SYMBOL].flat and engine.orders[tp_id].status is OrderStatus.CANCELED
    sent = len(list(venue.sim.orders()))
    engine.on_halt(control_pb2.HaltState(halted=True, flatten=True), cause="ev-2")  # redelivered
    assert len(list(venue.sim.orders())) == sent
    engine.on_halt(control_pb2.HaltState(halted=False), cause="ev-3")
    assert engine.on_decision(decision("i-4")).status is OrderStatus.FILLED


def test_restart_rebuilds_state_reinserts_resting_orders_and_places_no_duplicate() -> None:
    engine, _, emitter = booked()
    engine.on_decision(decision("i-1", tp=105.0, sl=95.0))
    resting = engine.on_decision(
        decision("i-2", order_type=risk_pb2.ORDER_TYPE_LIMIT, limit=99.0, tif=risk_pb2.TIME_IN_FORCE_GTC, qty=0.2)
    )
    before = {cid: (o.status, o.filled_quantity) for cid, o in engine.orders.items()}
    position_before = engine.positions[SYMBOL].quantity

    venue2 = PaperVenue()
    emitter2 = ListEmitter()
    engine2 = ExecutionEngine(venue2, emitter2, clock=lambda: venue2.now_ns() or 1)
    engine2.restore((key, record.SerializeToString()) for key, record in emitter.states)
    notes = engine2.reconcile()
    assert {cid: (o.status, o.filled_quantity) for cid, o in engine2.orders.items()} == before
    assert engine2.positions[SYMBOL].quantity == position_before and notes == []
    # Redelivered decisions after the restart: nothing new reaches the venue.
    engine2.on_decision(decision("i-1", tp=105.0, sl=95.0))
    engine2.on_decision(decision("i-2", order_type=risk_pb2.ORDER_TYPE_LIMIT, limit=99.0, qty=0.2))
    assert engine2.counters["duplicates_ignored"] == 2 and engine2.counters["orders_placed"] == 0
    # The resting limit and the OCO legs live on in the new simulator.
    engine2.on_market(depth(5_000, [(98.0, 1)], [(98.5, 1)]))
    assert engine2.orders[resting.client_order_id].status is OrderStatus.FILLED
    assert engine2.positions[SYMBOL].quantity == position_before + D("0.2")


def test_unusable_intents_are_ignored_not_traded() -> None:
    engine, venue, _ = booked()
    assert engine.on_decision(decision("bad-1", qty=float("nan"))) is None
    assert engine.on_decision(decision("bad-2", symbol="")) is None
    assert engine.on_decision(decision("bad-3", order_type=risk_pb2.ORDER_TYPE_LIMIT)) is None
    assert list(venue.sim.orders()) == [] and engine.counters["ignored_decisions"] == 3


def test_an_exit_too_small_to_send_leaves_the_protection_in_place() -> None:
    engine, _, _ = booked()
    entry = engine.on_decision(decision("i-1", tp=105.0, sl=95.0))
    dust = engine.on_decision(decision("x-1", side=SELL, qty=0.00001, kind=risk_pb2.INTENT_KIND_EXIT))
    assert dust.status is OrderStatus.REJECTED and dust.reject_message == "Filter failure: NOTIONAL"
    tp_id, sl_id, _ = ids.protective_ids(entry.client_order_id)
    assert engine.orders[tp_id].status is OrderStatus.NEW and engine.orders[sl_id].status is OrderStatus.NEW


def test_a_fill_report_marks_the_position_at_the_market_not_at_the_price_paid() -> None:
    engine, _, emitter = paper_engine()
    engine.on_market(top(1_000, 99.0, 5.0, 100.0, 5.0))  # mid 99.5
    engine.on_decision(decision("i-1", qty=1.0))
    engine.on_decision(decision("x-1", side=SELL, qty=1.0, kind=risk_pb2.INTENT_KIND_EXIT))
    assert engine.positions[SYMBOL].flat
    engine.on_market(top(2_000, 119.0, 5.0, 120.0, 5.0))  # the market moves while flat: mid 119.5
    engine.on_decision(decision("i-2", qty=1.0))
    report = [r for r in emitter.reports if r.HasField("fill")][-1]
    # Bought at the ask 120 with the mid at 119.5: half the spread is the honest unrealised result,
    # not the 20-point gain or loss a mark left over from the first round trip would show.
    assert report.position.quantity == 1.0 and report.position.average_price == 120.0
    assert report.position.unrealized_pnl == -0.5


def test_the_mark_never_goes_back_to_an_older_event_read_later() -> None:
    # Three topics, read in whatever order the consumer polls them: a trade handled after the newer book must not
    # become the mark (two runs of one market would report different marks and equity).
    engine, _, _ = paper_engine()
    engine.on_market(top(2_000, 99.0, 1.0, 101.0, 1.0))
    engine.on_market(trade(1_500, 99.0))  # older than the book: folded into the venue, not the mark
    assert engine.marks[SYMBOL] == 100
    engine.on_market(trade(2_500, 101.0))
    assert engine.marks[SYMBOL] == 101

"""Execution never duplicates an order or oversells a position: time stops, in-flight exits, stand-in
fills, reconciliation, protection and a flatten after a restart."""

from __future__ import annotations

from decimal import Decimal

from quantumedge.execution.domain.filters import SymbolFilters
from quantumedge.execution.domain.orders import Fill, OrderSnapshot, OrderStatus, OrderUpdate
from quantumedge.execution.engine import EngineConfig, ExecutionEngine, ListEmitter
from quantumedge.execution.errors import RateLimited
from quantumedge.execution.paper import PaperConfig
from quantumedge.execution.venue import Venue
from quantumedge.v1 import common_pb2, risk_pb2
from tests.support.execution_builders import BOOK_ASKS, BOOK_BIDS, SYMBOL, decision, depth, paper_engine, trade

D = Decimal
SELL_EXIT = {"side": common_pb2.SIDE_SELL, "kind": risk_pb2.INTENT_KIND_EXIT}


def test_a_time_stop_never_sells_another_trades_position() -> None:
    engine, _, _ = paper_engine()
    engine.on_market(depth(1_000, BOOK_BIDS, BOOK_ASKS))
    a = engine.on_decision(decision("A", tp=101.0, sl=90.0, time_stop_ns=1_000_000))
    engine.on_decision(decision("B", tp=105.0, sl=95.0))
    engine.on_market(trade(2_000, 101.5, 0.1))  # A's target fills; B's does not
    assert engine.positions[SYMBOL].quantity == D("0.1") and a.time_stop_deadline_ns == 0
    engine.on_market(depth(2_000_000, BOOK_BIDS, BOOK_ASKS))  # past A's old deadline: nothing to do
    assert engine.positions[SYMBOL].quantity == D("0.1")
    engine.on_market(trade(3_000_000, 94.0, 1.0))  # B's own stop closes B
    assert engine.positions[SYMBOL].quantity == 0


def test_exit_intents_in_flight_never_sell_more_than_is_held() -> None:
    engine, _, _ = paper_engine(PaperConfig(latency_ns=1_000_000))
    engine.on_market(depth(1_000, BOOK_BIDS, BOOK_ASKS))
    engine.on_decision(decision("A"))
    engine.on_market(depth(2_000_000, BOOK_BIDS, BOOK_ASKS))
    assert engine.positions[SYMBOL].quantity == D("0.1")
    first = engine.on_decision(decision("X1", qty=0.1, **SELL_EXIT))
    second = engine.on_decision(decision("X2", qty=0.1, **SELL_EXIT))
    assert first.quantity == D("0.1")
    assert second.status is OrderStatus.REJECTED and second.reject_code == "NO_POSITION"
    engine.on_market(depth(4_000_000, BOOK_BIDS, BOOK_ASKS))
    assert engine.positions[SYMBOL].quantity == 0


class ScriptedVenue(Venue):
    """Accepts orders and answers queries from a list of trades; its trade history can be made to fail."""

    name = "scripted"

    def __init__(self) -> None:
        self.placed: dict = {}
        self.trades: list[Fill] = []
        self.trades_ok = True

    def filters(self, symbol: str) -> SymbolFilters:
        return SymbolFilters.simple(symbol)

    def submit(self, request):
        self.placed[request.client_order_id] = request
        return [OrderUpdate(request.client_order_id, request.symbol, OrderStatus.NEW, "1")]

    def submit_oco(self, request):
        raise NotImplementedError

    def cancel(self, symbol, client_order_id):
        return []

    def query(self, symbol, client_order_id):
        r = self.placed.get(client_order_id)
        done = sum((f.quantity for f in self.trades), D(0))
        quote = sum((f.quantity * f.price for f in self.trades), D(0))
        status = OrderStatus.PARTIALLY_FILLED if done else OrderStatus.NEW
        return r and OrderSnapshot(
            client_order_id, symbol, r.side, r.order_type, status, r.quantity, done, quote, r.price, venue_order_id="1"
        )

    def open_orders(self, symbol=None):
        return [self.query(SYMBOL, c) for c in self.placed]

    def order_fills(self, snapshot):
        if not self.trades_ok:
            raise RateLimited(10, False, message="rate limit")
        return list(self.trades)

    def now_ns(self) -> int:
        return 1


def _scripted() -> tuple[ExecutionEngine, ScriptedVenue]:
    venue = ScriptedVenue()
    engine = ExecutionEngine(venue, ListEmitter(), EngineConfig(symbols=(SYMBOL,)), clock=lambda: 1)
    return engine, venue


def test_a_stand_in_fill_is_not_counted_again_when_the_real_trade_shows_up() -> None:
    engine, venue = _scripted()
    order = engine.on_decision(decision("A", qty=1.0, order_type=risk_pb2.ORDER_TYPE_LIMIT, limit=99.0))
    cid = order.client_order_id
    venue.trades = [Fill(cid, "t1", D("99"), D("0.1")), Fill(cid, "t2", D("99"), D("0.1"))]
    venue.trades_ok = False
    # The stream lost t1; t2 arrives saying 0.2 is done, and the trade history cannot be read right now.
    engine.on_update(
        OrderUpdate(
            cid,
            SYMBOL,
            OrderStatus.PARTIALLY_FILLED,
            "1",
            venue.trades[1],
            executed_quantity=D("0.2"),
            executed_quote=D("19.8"),
        )
    )
    assert order.filled_quantity == D("0.2")
    venue.trades_ok = True
    engine.reconcile()  # now t1 is readable under its own id
    assert order.filled_quantity == D("0.2") and engine.positions[SYMBOL].quantity == D("0.2")
    # A genuinely new trade still counts.
    engine.on_update(
        OrderUpdate(
            cid,
            SYMBOL,
            OrderStatus.PARTIALLY_FILLED,
            "1",
            Fill(cid, "t3", D("99"), D("0.1")),
            executed_quantity=D("0.3"),
            executed_quote=D("29.7"),
        )
    )
    assert order.filled_quantity == D("0.3")


def test_an_unreadable_trade_history_does_not_abort_reconciliation() -> None:
    engine, venue = _scripted()
    order = engine.on_decision(decision("A", qty=1.0, order_type=risk_pb2.ORDER_TYPE_LIMIT, limit=99.0))
    venue.trades = [Fill(order.client_order_id, "t1", D("99"), D("0.1"))]
    venue.trades_ok = False
    engine.reconcile()  # must not raise: the cumulative quantity catches the order up
    assert order.filled_quantity == D("0.1") and engine.positions[SYMBOL].quantity == D("0.1")


def test_protection_that_never_reached_the_venue_does_not_leave_the_position_naked() -> None:
    from quantumedge.execution.errors import OutcomeUnknown

    engine, venue, _ = paper_engine()
    engine.on_market(depth(1_000, BOOK_BIDS, BOOK_ASKS))
    real_submit_oco = venue.submit_oco

    def lost(request):
        raise OutcomeUnknown("timeout", "no answer")

    venue.submit_oco = lost  # the OCO's answer is lost, and in fact it never got there
    entry = engine.on_decision(decision("A", tp=105.0, sl=95.0))
    venue.submit_oco = real_submit_oco
    assert entry.protection_placed and engine.positions[SYMBOL].quantity == D("0.1")
    engine.on_market(depth(10_000_000_000, BOOK_BIDS, BOOK_ASKS))
    engine.resolve_pending()
    # Within the bound the legs are only looked up: the OCO may still execute late, it is never re-sent.
    assert engine.positions[SYMBOL].quantity == D("0.1")
    engine.on_market(depth(engine.config.unknown_outcome_bound_ns + 2_000, BOOK_BIDS, BOOK_ASKS))
    engine.resolve_pending()
    legs = [o for o in engine.list_orders() if o.role.name in ("TAKE_PROFIT", "STOP_LOSS")]
    assert legs and all(o.outcome_unknown for o in legs)
    # Past the bound: closed as its stop would have closed it, instead of sitting unprotected.
    assert engine.positions[SYMBOL].quantity == 0


def test_a_time_stop_exit_the_venue_cannot_take_now_is_tried_again() -> None:
    from quantumedge.execution.errors import VenueUnavailable

    engine, venue, _ = paper_engine()
    engine.on_market(depth(1_000, BOOK_BIDS, BOOK_ASKS))
    entry = engine.on_decision(decision("A", tp=120.0, sl=80.0, time_stop_ns=1_000_000))
    real_submit = venue.submit
    failures = [VenueUnavailable("503", "venue down")]

    def flaky(request):
        if request.client_order_id.startswith("qeT") and failures:
            raise failures.pop()
        return real_submit(request)

    venue.submit = flaky
    engine.on_market(depth(2_000_000, BOOK_BIDS, BOOK_ASKS))  # the time stop fires; its exit is not placed
    assert engine.positions[SYMBOL].quantity == D("0.1")
    assert all(not o.is_open for o in engine.list_orders() if o.parent_client_order_id == entry.client_order_id)
    engine.on_market(depth(5_000_000_000, BOOK_BIDS, BOOK_ASKS))  # past the retry delay on the market clock
    assert engine.positions[SYMBOL].quantity == 0


def test_a_flatten_asked_for_right_after_a_restart_goes_through_once_prices_arrive() -> None:
    from quantumedge.execution.venue import PaperVenue
    from quantumedge.v1 import control_pb2

    engine, _, emitter = paper_engine()
    engine.on_market(depth(1_000, BOOK_BIDS, BOOK_ASKS))
    engine.on_decision(decision("A", tp=105.0, sl=95.0))
    assert engine.positions[SYMBOL].quantity == D("0.1")
    # Restart: a new simulator with no book yet, and the current halt asks to flatten.
    venue2 = PaperVenue()
    engine2 = ExecutionEngine(venue2, ListEmitter(), clock=lambda: venue2.now_ns() or 1)
    engine2.restore((key, record.SerializeToString()) for key, record in emitter.states)
    engine2.reconcile()
    engine2.on_halt(control_pb2.HaltState(halted=True, flatten=True), cause="halt-1", reason="drill")
    assert engine2.positions[SYMBOL].quantity == D("0.1")  # no price yet: the flatten could not go
    engine2.on_market(depth(3_000_000_000, BOOK_BIDS, BOOK_ASKS))
    assert engine2.positions[SYMBOL].quantity == 0

"""An order whose outcome is unknown is never sent again blind (Binance: -1007 TIMEOUT "does not always
mean that the request failed in the Matching Engine"; 5xx: "the execution status is UNKNOWN").

The local peer answers -1007 and executes the order later, as the matching engine may; or it loses the
request for good. Either way exactly one order exists, and the engine resolves it from the user data
stream, order queries and trades, or, once its bound has run out, takes exits only on the symbol and
raises an operator alert until its fate is known.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from quantumedge.execution.domain import ids
from quantumedge.execution.domain.orders import OrderStatus
from quantumedge.execution.domain.unknown import OUTCOME_UNKNOWN
from quantumedge.execution.engine import EngineConfig, ExecutionEngine, ListEmitter
from quantumedge.v1 import common_pb2, risk_pb2
from tests.integration.execution.rig import SYMBOL, engine_on_peer, standard_book, wait_until
from tests.peers.binance_trading import BinanceTradingPeer
from tests.support.execution_builders import decision

D = Decimal
BOUND_NS = 1_500_000_000  # short for tests; the default is 60 s


@pytest.fixture
def peer() -> Iterator[BinanceTradingPeer]:
    with BinanceTradingPeer(symbols=(SYMBOL,)) as p:
        standard_book(p)
        yield p


def config() -> EngineConfig:
    return EngineConfig(symbols=(SYMBOL,), unknown_outcome_bound_ns=BOUND_NS)


def orders_on_venue(peer: BinanceTradingPeer, cid: str) -> int:
    with peer._lock:
        return sum(1 for o in peer.orders.values() if o.client_order_id == cid)


def resolve_until(engine: ExecutionEngine, done: object, what: str, timeout_s: float = 15.0) -> None:
    """Run the engine's housekeeping (as the service does every second) until `done()` holds."""

    def step() -> bool:
        engine.resolve_pending()
        return bool(done())  # type: ignore[operator]

    wait_until(step, timeout_s=timeout_s, what=what)


@pytest.mark.parametrize("http_status", [408, 503])
def test_minus_1007_then_late_execution_makes_exactly_one_order(peer: BinanceTradingPeer, http_status: int) -> None:
    emitter = ListEmitter()
    with engine_on_peer(peer, emitter, config=config()) as engine:
        peer.late_execute_next(1, after_s=1.0, http_status=http_status)
        order = engine.on_decision(decision("i-late", qty=0.1, tp=105.0, sl=95.0))
        cid = order.client_order_id
        # Whatever the HTTP status (408 is a 4xx), -1007 is an unknown outcome, not a rejection.
        assert order.status is OrderStatus.PENDING and order.outcome_unknown
        assert order.outcome_unknown_code == "-1007"
        assert orders_on_venue(peer, cid) == 0  # the matching engine has not executed it yet
        # The venue executes it late; the user data stream reports it.
        wait_until(lambda: order.status is OrderStatus.FILLED, what="the late execution to be reported")
        # Housekeeping keeps running: nothing is sent again.
        for _ in range(5):
            engine.resolve_pending()
        assert peer.order_requests[cid] == 1 and peer.accepted[cid] == 1 and orders_on_venue(peer, cid) == 1
        assert order.filled_quantity == D("0.1")
        assert engine.positions[SYMBOL].quantity == peer.balance("BTC") == D("0.1") - D("0.0001")
        # It is protected like any filled entry, and nothing was ever alerted.
        tp_id, sl_id, _ = ids.protective_ids(cid)
        assert engine.orders[tp_id].status is OrderStatus.NEW and engine.orders[sl_id].status is OrderStatus.NEW
        assert not any(r.alert for r in emitter.reports)
        assert engine.exits_only() == {}


def test_an_unknown_outcome_is_resolved_by_query_without_the_user_stream(peer: BinanceTradingPeer) -> None:
    with engine_on_peer(peer, config=config(), user_stream=False) as engine:
        peer.late_execute_next(1, after_s=0.8, http_status=503)
        order = engine.on_decision(decision("i-late-rest", qty=0.05))
        assert order.outcome_unknown
        resolve_until(engine, lambda: order.status is OrderStatus.FILLED, "a query to find the late order")
        cid = order.client_order_id
        assert peer.order_requests[cid] == 1 and orders_on_venue(peer, cid) == 1
        assert engine.positions[SYMBOL].quantity == peer.balance("BTC")
        # Its fills came from myTrades (trade ids), not from a stand-in.
        assert all(not t.startswith("recon:") for t in order.trade_ids) and order.trade_ids


def test_an_order_lost_for_good_is_never_resent_and_its_symbol_takes_exits_only(peer: BinanceTradingPeer) -> None:
    emitter = ListEmitter()
    with engine_on_peer(peer, emitter, config=config()) as engine:
        engine.on_decision(decision("i-held", qty=0.1))  # a position to exit later
        held = engine.positions[SYMBOL].quantity
        peer.lose_next_orders(1, hold_s=0.5)
        lost = engine.on_decision(decision("i-lost", qty=0.05))
        cid = lost.client_order_id
        assert lost.outcome_unknown and peer.order_requests[cid] == 1
        # Past the bound: still unknown, never sent again; exits only on the symbol, and an operator alert.
        resolve_until(engine, lambda: engine.exits_only() == {SYMBOL: OUTCOME_UNKNOWN}, "the bound to run out")
        engine.resolve_pending()
        assert peer.order_requests[cid] == 1 and orders_on_venue(peer, cid) == 0
        assert lost.status is OrderStatus.PENDING
        alerts = [r for r in emitter.reports if r.alert]
        assert [(r.alert, r.order.client_order_id) for r in alerts] == [(OUTCOME_UNKNOWN, cid)]
        status = engine.status()
        assert list(status.exits_only) == [f"{SYMBOL}:{OUTCOME_UNKNOWN}"] and status.unknown_outcome_orders == 1
        # A new entry is refused; an exit still goes.
        entry = engine.on_decision(decision("i-after", qty=0.05))
        assert entry.status is OrderStatus.REJECTED and entry.reject_code == "EXITS_ONLY"
        assert entry.client_order_id not in peer.order_requests
        exit_order = engine.on_decision(
            decision("i-exit", side=common_pb2.SIDE_SELL, qty=float(held), kind=risk_pb2.INTENT_KIND_EXIT)
        )
        assert exit_order.status is OrderStatus.FILLED, exit_order.reject_code
        # The operator checked the venue and cancels: the matching engine has no such order, so it is closed.
        engine.cancel_all(SYMBOL, reason="checked the venue: never arrived")
        assert lost.status is OrderStatus.EXPIRED and engine.exits_only() == {}
        assert peer.order_requests[cid] == 1
        again = engine.on_decision(decision("i-again", qty=0.05))
        assert again.status is OrderStatus.FILLED


def test_an_order_executed_after_the_bound_lifts_exits_only_by_itself(peer: BinanceTradingPeer) -> None:
    emitter = ListEmitter()
    with engine_on_peer(peer, emitter, config=config(), user_stream=False) as engine:
        peer.late_execute_next(1, after_s=2.5, http_status=408)
        order = engine.on_decision(decision("i-very-late", qty=0.05))
        resolve_until(engine, lambda: engine.exits_only() == {SYMBOL: OUTCOME_UNKNOWN}, "the bound to run out")
        assert [r.alert for r in emitter.reports if r.alert] == [OUTCOME_UNKNOWN]
        resolve_until(engine, lambda: order.status is OrderStatus.FILLED, "the late order to be found", 40.0)
        assert engine.exits_only() == {} and orders_on_venue(peer, order.client_order_id) == 1
        assert peer.order_requests[order.client_order_id] == 1
        assert engine.positions[SYMBOL].quantity == peer.balance("BTC")


def test_an_unknown_order_survives_a_restart_and_is_still_never_resent(peer: BinanceTradingPeer) -> None:
    emitter = ListEmitter()
    with engine_on_peer(peer, emitter, config=config(), user_stream=False) as engine:
        peer.late_execute_next(1, after_s=2.0, http_status=408)
        order = engine.on_decision(decision("i-restart", qty=0.05))
        cid = order.client_order_id
        assert order.outcome_unknown
    # Restarted before the venue executed it: what was persisted says the outcome is unknown.
    with engine_on_peer(peer, ListEmitter(), config=config(), user_stream=False) as restarted:
        restarted.restore((k, r.SerializeToString()) for k, r in emitter.states)
        restarted.reconcile()
        again = restarted.orders[cid]
        assert again.outcome_unknown and again.outcome_unknown_code == "-1007"
        restarted.on_decision(decision("i-restart", qty=0.05))  # the redelivered decision finds it
        time.sleep(0.1)
        resolve_until(restarted, lambda: again.status is OrderStatus.FILLED, "the late order after restart")
        assert peer.order_requests[cid] == 1 and orders_on_venue(peer, cid) == 1
        assert (
            restarted.positions[SYMBOL].quantity == peer.balance("BTC") - restarted.positions[SYMBOL].baseline_quantity
        )

"""execution.state.v1 stays bounded: finished orders nothing needs are tombstoned after the retention,
and what is still live (an open position's protection, its entry) survives compaction and a restart."""

from __future__ import annotations

from decimal import Decimal

from quantumedge.execution.compaction import DEFAULT_RETENTION_NS
from quantumedge.execution.domain.orders import OrderRole
from quantumedge.execution.engine import EngineConfig, ExecutionEngine, ListEmitter
from quantumedge.execution.venue import PaperVenue
from quantumedge.v1 import common_pb2, risk_pb2
from tests.support.execution_builders import BOOK_ASKS, BOOK_BIDS, SYMBOL, decision, depth, paper_engine, trade

D = Decimal
DAY = DEFAULT_RETENTION_NS


def _latest(states):
    latest: dict[str, bytes] = {}
    for key, record in states:
        if record is None:
            latest.pop(key, None)
        else:
            latest[key] = record.SerializeToString()
    return latest


def test_finished_orders_are_tombstoned_after_the_retention_and_live_ones_survive_a_restart() -> None:
    engine, _, emitter = paper_engine()
    engine.on_market(depth(1_000, BOOK_BIDS, BOOK_ASKS))
    for n in range(20):  # twenty round trips, each closed by an exit
        engine.on_market(depth(2_000 + n * 1_000, BOOK_BIDS, BOOK_ASKS))
        engine.on_decision(decision(f"A{n}", tp=120.0, sl=80.0))
        engine.on_decision(decision(f"X{n}", side=common_pb2.SIDE_SELL, kind=risk_pb2.INTENT_KIND_EXIT, qty=0.1))
    assert engine.positions[SYMBOL].quantity == 0
    engine.on_market(depth(100_000, BOOK_BIDS, BOOK_ASKS))
    live = engine.on_decision(decision("LIVE", tp=120.0, sl=80.0))  # a position still protected
    assert engine.compact() == 0  # nothing is older than the retention yet
    engine.on_market(trade(DAY + 200_000, 100.0, 0.001))
    forgotten = engine.compact()
    assert forgotten == 20 * 4  # each round trip: entry, its two legs, its exit
    left = _latest(emitter.states)
    order_keys = {k for k in left if not k.startswith("position:")}
    assert live.client_order_id in order_keys and len(order_keys) == 3  # the live entry and its two legs
    venue2 = PaperVenue()
    engine2 = ExecutionEngine(
        venue2, ListEmitter(), EngineConfig(symbols=(SYMBOL,)), clock=lambda: venue2.now_ns() or 1
    )
    engine2.restore(left.items())
    engine2.reconcile()
    assert engine2.positions[SYMBOL].quantity == D("0.1")
    assert {o.role for o in engine2.list_orders(open_only=True)} == {OrderRole.TAKE_PROFIT, OrderRole.STOP_LOSS}
    # A redelivered old intent (long past any redelivery) would be a new order; a recent one is still found.
    assert engine2.on_decision(decision("LIVE", tp=120.0, sl=80.0)) is engine2.orders[live.client_order_id]

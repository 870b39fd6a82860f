"""Execution applies REDUCING itself: entries refused in the reduced scope, exits, protection and flattening
go on; the state comes from risk's signed state:<scope> records on control.v1 and survives a restart."""

from __future__ import annotations

import time

import pytest

from quantumedge.execution.domain import ids
from quantumedge.execution.domain.orders import OrderStatus
from quantumedge.execution.service import ExecutionService
from quantumedge.shared import signing, topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.v1 import common_pb2, control_pb2, dlq_pb2, risk_pb2
from tests.support.execution_builders import BOOK_ASKS, BOOK_BIDS, SYMBOL, decision, depth, paper_engine
from tests.support.signing import signed
from tests.unit.execution.test_service import MID, publish_book, settings, wait_for

REDUCING = risk_pb2.TRADING_STATE_REDUCING


def _state(symbol: str, state: int = REDUCING, code: str = "operator") -> risk_pb2.SymbolTradingState:
    causes = [risk_pb2.StateCause(reason_code=code, detail="drain")] if state == REDUCING else []
    return risk_pb2.SymbolTradingState(symbol=symbol, state=state, reason_code=code, detail="drain", causes=causes)


@pytest.mark.parametrize("scope", [SYMBOL, ""])
def test_reducing_refuses_entries_keeps_protection_and_lets_exits_and_flatten_through(scope: str) -> None:
    engine, _, _ = paper_engine()
    engine.on_market(depth(1_000, BOOK_BIDS, BOOK_ASKS))
    protected = engine.on_decision(decision("i-1", qty=0.2, tp=105.0, sl=95.0))
    engine.on_trading_state(_state(scope))

    refused = engine.on_decision(decision("i-2"))
    assert refused.status is OrderStatus.REJECTED and refused.reject_code == "REDUCING"
    tp_id, sl_id, _ = ids.protective_ids(protected.client_order_id)
    assert engine.orders[tp_id].is_open and engine.orders[sl_id].is_open  # protection stays on the venue

    exit_ = engine.on_decision(
        decision("x-1", side=common_pb2.SIDE_SELL, qty=0.1, kind=risk_pb2.INTENT_KIND_EXIT, reference=99.9)
    )
    assert exit_.status is OrderStatus.FILLED, (exit_.reject_code, exit_.reject_message)
    assert engine.flatten(SYMBOL, reason="operator") >= 1 and engine.positions[SYMBOL].flat
    assert [s.symbol for s in engine.status().trading_states] == [scope]

    engine.on_trading_state(_state(scope, risk_pb2.TRADING_STATE_ACTIVE, ""))
    assert engine.on_decision(decision("i-3")).status is OrderStatus.FILLED


def test_a_signed_state_record_reduces_execution_survives_a_restart_and_a_forged_one_is_refused() -> None:
    bus = MemoryBus()
    first = ExecutionService(settings(), bus)
    first.start()
    try:
        publish_book(bus, first)
        forged = control_pb2.ControlEvent(event_id="forged", time_ns=time.time_ns(), trading_state=_state(SYMBOL))
        bus.publish(topics.CONTROL, "state:BTCUSDT", forged)  # unsigned: dead-lettered, never applied
        event = control_pb2.ControlEvent(event_id="s-1", time_ns=time.time_ns(), trading_state=_state(SYMBOL))
        bus.publish(topics.CONTROL, "state:BTCUSDT", signed(event, topics.CONTROL, "state:BTCUSDT"))
        wait_for(lambda: first.engine.reducing(SYMBOL), what="REDUCING reaching execution")
        letters = [dlq_pb2.DeadLetter.FromString(r.value) for r in bus.read_all(topics.DLQ)]
        assert [d.source_topic for d in letters] == [topics.CONTROL]
        assert letters[0].reason_code != signing.ACCEPTED
        bus.publish(topics.DECISIONS, SYMBOL, signed(decision("r-1", qty=0.001, reference=MID)))
        refused = wait_for(lambda: [o for o in first.engine.orders.values() if o.intent_id == "r-1"], what="r-1")
        assert refused[0].reject_code == "REDUCING"
        status = first.engine.status()
        assert [(s.symbol, s.state, s.reason_code) for s in status.trading_states] == [(SYMBOL, REDUCING, "operator")]
    finally:
        first.stop()

    second = ExecutionService(settings(), bus)
    second.start()
    try:
        assert second.engine.reducing(SYMBOL)  # rebuilt from control.v1 before anything is consumed
    finally:
        second.stop()

"""An operator's Reduce on risk reaches a separate `quantumedge serve execution` process over a real Kafka
broker: execution refuses new entries on the reduced symbol by itself, an exit of a held position still goes
through, and Activate lets entries through again. Both show the state in GetStatus."""

from __future__ import annotations

import uuid

import grpc
import pytest

from quantumedge.shared import topics
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.v1 import common_pb2, execution_pb2, execution_pb2_grpc, risk_pb2, risk_pb2_grpc
from tests.e2e.test_halt_reaches_execution import _audits, _control, _publish_market, _reports, _wait_for
from tests.e2e.test_halt_reaches_execution import stack as stack
from tests.support.execution_builders import SYMBOL, decision
from tests.support.signing import SESSION_KEYRING, signed_for_serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REDUCING = risk_pb2.TRADING_STATE_REDUCING


def _execution_state(stub: execution_pb2_grpc.ExecutionServiceStub) -> int:
    status = stub.GetStatus(execution_pb2.ExecutionServiceGetStatusRequest(), timeout=5)
    return next((s.state for s in status.trading_states if s.symbol == SYMBOL), risk_pb2.TRADING_STATE_ACTIVE)


def _trade(bus: KafkaBus, intent: str, **kw: object) -> list[execution_pb2.ExecutionReport]:
    _publish_market(bus)
    bus.publish(topics.DECISIONS, SYMBOL, signed_for_serve(decision(intent, **kw)))
    bus.flush()

    def settled() -> bool:
        return any(
            r.order.status in (execution_pb2.ORDER_STATUS_FILLED, execution_pb2.ORDER_STATUS_REJECTED)
            for r in _reports(bus, intent)
        )

    _wait_for(settled, 20, f"execution's report on {intent}")
    return _reports(bus, intent)


def test_operator_reduce_reaches_a_separate_execution_process_over_kafka(stack: dict) -> None:
    bus: KafkaBus = stack["bus"]
    risk: risk_pb2_grpc.RiskServiceStub = stack["risk"]
    execution: execution_pb2_grpc.ExecutionServiceStub = stack["execution"]
    held = _trade(bus, f"entry-{uuid.uuid4().hex[:8]}", qty=0.1)
    assert any(r.order.status == execution_pb2.ORDER_STATUS_FILLED for r in held)

    with pytest.raises(grpc.RpcError) as refused:
        risk.Reduce(risk_pb2.ReduceRequest(symbol=SYMBOL), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    answer = risk.Reduce(risk_pb2.ReduceRequest(symbol=SYMBOL, reason="e2e drain"), metadata=stack["operator"])
    assert answer.state.state == REDUCING and answer.state.reason_code == "operator"
    _wait_for(lambda: _execution_state(execution) == REDUCING, 15, "execution to apply REDUCING")
    records = [e for e in _control(bus) if e.HasField("trading_state")]
    assert records and records[-1].trading_state.symbol == SYMBOL
    assert SESSION_KEYRING.verify(records[-1], topics.CONTROL, "state:BTCUSDT").ok  # signed by risk
    risk_states = risk.GetStatus(risk_pb2.RiskServiceGetStatusRequest(), timeout=5).symbol_states
    assert [(s.symbol, s.state) for s in risk_states] == [(SYMBOL, REDUCING)]

    # An approved entry (as risk would have published it before the state changed) is refused by execution.
    blocked = _trade(bus, f"blocked-{uuid.uuid4().hex[:8]}", qty=0.1)
    assert [r.order.status for r in blocked] == [execution_pb2.ORDER_STATUS_REJECTED]
    assert blocked[0].order.reject_code == "REDUCING" and not blocked[0].order.venue_order_id
    # An exit of the held position still goes to the venue.
    exit_ = _trade(
        bus,
        f"exit-{uuid.uuid4().hex[:8]}",
        side=common_pb2.SIDE_SELL,
        qty=0.1,
        kind=risk_pb2.INTENT_KIND_EXIT,
        reference=99.9,
    )
    assert any(r.order.status == execution_pb2.ORDER_STATUS_FILLED for r in exit_)

    back = risk.Activate(risk_pb2.ActivateRequest(symbol=SYMBOL, reason="drained"), metadata=stack["operator"])
    assert back.state.state == risk_pb2.TRADING_STATE_ACTIVE
    _wait_for(lambda: _execution_state(execution) != REDUCING, 15, "execution to apply ACTIVE")
    again = _trade(bus, f"again-{uuid.uuid4().hex[:8]}", qty=0.1)
    assert any(r.order.status == execution_pb2.ORDER_STATUS_FILLED for r in again)
    audited = [e.audit for e in _audits(bus) if e.audit.method in ("Reduce", "Activate")]
    assert [(a.method, a.allowed) for a in audited] == [("Reduce", True), ("Activate", True)]
    for name, proc in stack["procs"].items():
        assert proc.poll() is None, f"{name} died"

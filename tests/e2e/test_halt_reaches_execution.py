"""An operator's Halt on risk reaches execution over a real Kafka broker and stops new orders; Resume lets
them through again. Risk and execution run as two separate `quantumedge serve` processes."""

from __future__ import annotations

import contextlib
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from kafka import KafkaAdminClient

from quantumedge.execution.domain import ids
from quantumedge.shared import topics
from quantumedge.shared.auth import token_sha256
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.config import KafkaSettings
from quantumedge.v1 import control_pb2, execution_pb2, execution_pb2_grpc, risk_pb2, risk_pb2_grpc
from tests.support.execution_builders import SYMBOL, decision, top, trade
from tests.support.procs import free_port, kafka_env, spawn, stop, wait_serving
from tests.support.signing import signed_for_serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SERVICES = ("execution", "risk")  # downstream first, so nothing risk publishes goes unheard
OPERATOR = "e2e-operator"


@pytest.fixture
def stack(kafka_bootstrap: str, tmp_path: Path) -> Iterator[dict]:
    """Execution and risk as two processes on the shared broker, on topics of this test only."""
    prefix = f"e2e-halt-{uuid.uuid4().hex[:8]}."
    token = secrets.token_urlsafe(24)
    ports = {name: free_port() for name in SERVICES}
    env = {
        **kafka_env(kafka_bootstrap, prefix, ports),
        "QE_SYMBOLS": f'["{SYMBOL}"]',
        "QE_DATA_DIR": str(tmp_path / "var"),
        # Only the hash reaches the services; the token itself stays in this test.
        "QE_VAULT__OPERATOR_TOKEN_SHA256": f"{OPERATOR}:{token_sha256(token)}",
    }
    bus = KafkaBus(KafkaSettings(bootstrap=kafka_bootstrap, allow_plaintext=True, topic_prefix=prefix))
    bus.ensure_topics()
    procs = {}
    channels: dict[str, grpc.Channel] = {}
    try:
        for name in SERVICES:
            procs[name] = spawn(["serve", name], env, tmp_path / f"{name}.log")
            wait_serving(ports[name], proc=procs[name])
            channels[name] = grpc.insecure_channel(f"127.0.0.1:{ports[name]}")
        yield {
            "bus": bus,
            "procs": procs,
            "risk": risk_pb2_grpc.RiskServiceStub(channels["risk"]),
            "execution": execution_pb2_grpc.ExecutionServiceStub(channels["execution"]),
            "operator": (("authorization", f"Bearer {token}"),),
        }
    finally:
        for channel in channels.values():
            channel.close()
        codes = {name: stop(p) for name, p in procs.items()}
        bus.close()
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="qe-test-e2e-halt")
        with contextlib.suppress(Exception):
            admin.delete_topics([f"{prefix}{spec.name}" for spec in topics.ALL], timeout_ms=30_000)
        admin.close()
        for name in SERVICES:
            log_file = tmp_path / f"{name}.log"
            if log_file.exists():
                print(f"--- {name} (exit {codes.get(name)}) ---\n{log_file.read_text()[-3000:]}")


def _wait_for(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _reports(bus: KafkaBus, intent_id: str) -> list[execution_pb2.ExecutionReport]:
    reports = [execution_pb2.ExecutionReport.FromString(r.value) for r in bus.read_all(topics.REPORTS)]
    return [r for r in reports if r.order.intent_id == intent_id]


def _control(bus: KafkaBus) -> list[control_pb2.ControlEvent]:
    return [control_pb2.ControlEvent.FromString(r.value) for r in bus.read_all(topics.CONTROL)]


def _audits(bus: KafkaBus) -> list[control_pb2.ControlEvent]:
    return [control_pb2.ControlEvent.FromString(r.value) for r in bus.read_all(topics.AUDIT)]


def _halted(stub: execution_pb2_grpc.ExecutionServiceStub) -> bool:
    return stub.GetStatus(execution_pb2.ExecutionServiceGetStatusRequest(), timeout=5).halted


def _publish_market(bus: KafkaBus) -> None:
    """A trade and a top of book deep enough for the paper venue to fill a 0.1 BTC market buy at 100."""
    now = time.time_ns()
    bus.publish(topics.TRADES, SYMBOL, trade(now, 100.0, 1.0))
    bus.publish(topics.BOOK, SYMBOL, top(now + 1, 99.9, 5.0, 100.0, 5.0))
    bus.flush()


def test_operator_halt_reaches_execution_over_kafka_and_resume_lets_orders_through(stack: dict) -> None:
    bus: KafkaBus = stack["bus"]
    risk: risk_pb2_grpc.RiskServiceStub = stack["risk"]
    execution: execution_pb2_grpc.ExecutionServiceStub = stack["execution"]
    _publish_market(bus)

    # 1. Without the operator token the halt is refused, and nothing reaches execution.
    with pytest.raises(grpc.RpcError) as refused:
        risk.Halt(risk_pb2.HaltRequest(reason="e2e drill"), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as wrong:
        risk.Halt(risk_pb2.HaltRequest(reason="e2e drill"), metadata=(("authorization", "Bearer nope"),), timeout=10)
    assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED

    def refusals_audited() -> bool:
        audits = [e.audit for e in _audits(bus) if e.audit.method.endswith("/Halt")]
        return len([a for a in audits if not a.allowed]) == 2

    # Both refusals are on audit.v1 by now; nothing went to control.v1, so execution has nothing to apply.
    _wait_for(refusals_audited, 15, "both refused Halt calls audited on audit.v1")
    assert _control(bus) == []
    assert not risk.GetStatus(risk_pb2.RiskServiceGetStatusRequest(), timeout=5).halted
    assert not _halted(execution)

    # 2. With the token: risk halts, and execution learns it from control.v1 (the only path between them).
    answer = risk.Halt(risk_pb2.HaltRequest(reason="e2e drill"), metadata=stack["operator"], timeout=10)
    assert answer.halted
    _wait_for(lambda: _halted(execution), 15, "execution to report halted after the operator's Halt")
    halts = [e for e in _control(bus) if e.HasField("halt")]
    assert halts and halts[-1].halt.halted and halts[-1].actor.subject == OPERATOR

    # 3. An approved decision, as risk would publish it, is refused by execution with HALTED: nothing is placed.
    blocked = f"halted-{uuid.uuid4().hex[:8]}"
    bus.publish(topics.DECISIONS, SYMBOL, signed_for_serve(decision(blocked, qty=0.1)))
    bus.flush()
    _wait_for(lambda: _reports(bus, blocked), 15, "execution's report on the intent sent while halted")
    reports = _reports(bus, blocked)
    assert [r.order.status for r in reports] == [execution_pb2.ORDER_STATUS_REJECTED]
    assert reports[0].order.reject_code == "HALTED"
    assert not any(r.HasField("fill") for r in reports)
    (order,) = [o for o in execution.ListOrders(execution_pb2.ListOrdersRequest()).orders if o.intent_id == blocked]
    assert order.client_order_id == ids.order_id(ids.ENTRY, blocked)
    assert order.status == execution_pb2.ORDER_STATUS_REJECTED and order.reject_code == "HALTED"
    assert order.filled_quantity == 0 and not order.venue_order_id  # never sent to the venue
    status = execution.GetStatus(execution_pb2.ExecutionServiceGetStatusRequest(), timeout=5)
    assert status.halted and status.orders_placed == 0 and status.fills == 0 and status.rejects == 1

    # 4. Resume (with the token): execution is un-halted, and a new approved decision is filled.
    assert not risk.Resume(risk_pb2.ResumeRequest(reason="drill over"), metadata=stack["operator"], timeout=10).halted
    _wait_for(lambda: not _halted(execution), 15, "execution to report resumed after the operator's Resume")
    _publish_market(bus)  # a fresh book for the paper venue
    allowed = f"resumed-{uuid.uuid4().hex[:8]}"
    bus.publish(topics.DECISIONS, SYMBOL, signed_for_serve(decision(allowed, qty=0.1)))
    bus.flush()

    def filled() -> bool:
        return any(r.order.status == execution_pb2.ORDER_STATUS_FILLED for r in _reports(bus, allowed))

    _wait_for(filled, 15, "a FILLED report for the intent sent after Resume")
    reports = _reports(bus, allowed)
    fills = [r.fill for r in reports if r.HasField("fill")]
    assert fills and sum(f.quantity for f in fills) == pytest.approx(0.1)
    assert all(f.price == pytest.approx(100.0) for f in fills)
    assert not any(r.order.status == execution_pb2.ORDER_STATUS_REJECTED for r in reports)
    orders = {o.intent_id: o for o in execution.ListOrders(execution_pb2.ListOrdersRequest()).orders}
    assert orders[allowed].status == execution_pb2.ORDER_STATUS_FILLED and orders[allowed].venue_order_id
    assert orders[blocked].status == execution_pb2.ORDER_STATUS_REJECTED  # the halted intent stays refused
    status = execution.GetStatus(execution_pb2.ExecutionServiceGetStatusRequest(), timeout=5)
    assert not status.halted and status.orders_placed == 1 and status.fills >= 1
    for name, proc in stack["procs"].items():
        assert proc.poll() is None, f"{name} died"

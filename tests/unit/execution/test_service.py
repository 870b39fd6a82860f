"""The execution service on the in-process bus with the paper venue, its gRPC API, and SubmitOrder going
through a real RiskService (in-process, on the same bus) first."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from quantumedge.execution.service import ExecutionService
from quantumedge.execution.servicer import validate_submit
from quantumedge.execution.settings import ExecutionSettings
from quantumedge.risk.domain.reasons import primary_code
from quantumedge.risk.service import RiskService
from quantumedge.settings import Settings
from quantumedge.shared import signing, topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.shared.config import ConfigError, Ports
from quantumedge.shared.grpc_server import GrpcServer
from quantumedge.v1 import (
    common_pb2,
    control_pb2,
    dlq_pb2,
    execution_pb2,
    execution_pb2_grpc,
    market_pb2,
    risk_pb2,
)
from tests.support.execution_builders import decision
from tests.support.signing import signed
from tests.support.waiting import wait_for

SYMBOL = "BTCUSDT"
MID = 50_000.0


def book_event(mid: float = MID, qty: float = 2.0) -> market_pb2.MarketEvent:
    now = time.time_ns()
    return market_pb2.MarketEvent(
        symbol=SYMBOL,
        exchange_time_ns=now,
        receive_time_ns=now,
        source="synthetic",
        top_of_book=market_pb2.TopOfBook(bid_price=mid - 0.5, bid_quantity=qty, ask_price=mid + 0.5, ask_quantity=qty),
    )


class Reports:
    """Reads execution.reports.v1 as risk would (its own consumer group)."""

    def __init__(self, bus: MemoryBus) -> None:
        self.consumer = bus.consumer(f"test-{uuid.uuid4().hex[:6]}", [topics.REPORTS], from_beginning=True)
        self.seen: list[execution_pb2.ExecutionReport] = []

    def drain(self) -> list[execution_pb2.ExecutionReport]:
        for record in self.consumer.poll(0.05, 5000):
            self.seen.append(execution_pb2.ExecutionReport.FromString(record.value))
        return self.seen

    def fills(self, cid: str) -> list[execution_pb2.Fill]:
        return [r.fill for r in self.drain() if r.HasField("fill") and r.order.client_order_id == cid]


def settings(**execution: Any) -> Settings:
    return Settings(
        bus="memory",
        symbols=[SYMBOL, "ETHUSDT"],
        execution=ExecutionSettings(housekeeping_interval_s=0.05, **execution),
    )


@pytest.fixture
def bus() -> Iterator[MemoryBus]:
    b = MemoryBus()
    yield b
    b.close()


@pytest.fixture
def service(bus: MemoryBus) -> Iterator[ExecutionService]:
    svc = ExecutionService(settings(), bus)
    svc.start()
    yield svc
    svc.stop()


def publish_book(bus: MemoryBus, svc: ExecutionService, mid: float = MID) -> None:
    bus.publish(topics.BOOK, SYMBOL, book_event(mid))
    wait_for(lambda: svc.engine.marks.get(SYMBOL), what="the book reaching execution")


def test_an_approved_decision_becomes_a_paper_fill_report_once(bus: MemoryBus, service: ExecutionService) -> None:
    reports = Reports(bus)
    assert any(r.note.startswith("execution online") for r in reports.drain())  # risk learns execution is up
    publish_book(bus, service)
    approved = signed(decision("svc-1", qty=0.001, reference=MID))
    bus.publish(topics.DECISIONS, SYMBOL, approved)
    bus.publish(topics.DECISIONS, SYMBOL, approved)  # the same record written again: a replay
    bus.publish(topics.DECISIONS, SYMBOL, signed(decision("svc-2", qty=0.001, approved=False)))
    order = wait_for(lambda: next(iter(service.engine.orders.values()), None), what="an order")
    fills = wait_for(lambda: reports.fills(order.client_order_id), what="a fill report")
    assert sum(f.quantity for f in fills) == pytest.approx(0.001)
    wait_for(lambda: service.engine.counters["ignored_decisions"] == 1, what="the rejected decision")
    letters = [dlq_pb2.DeadLetter.FromString(r.value) for r in bus.read_all(topics.DLQ)]
    assert [(d.source_topic, d.reason_code) for d in letters] == [(topics.DECISIONS, signing.REPLAYED)]
    assert len(service.engine.orders) == 1 and service.engine.counters["duplicates_ignored"] == 0
    states = {r.key.decode() for r in bus.read_all(topics.EXEC_STATE)}
    assert {order.client_order_id, f"position:{SYMBOL}"} <= states


def test_halt_on_the_control_topic_stops_entries_and_survives_a_restart(bus: MemoryBus) -> None:
    first = ExecutionService(settings(), bus)
    first.start()
    publish_book(bus, first)
    bus.publish(topics.DECISIONS, SYMBOL, signed(decision("h-1", qty=0.001, reference=MID)))
    wait_for(lambda: first.engine.positions.get(SYMBOL) and not first.engine.positions[SYMBOL].flat, what="a position")
    halt = control_pb2.ControlEvent(
        event_id="halt-1", time_ns=time.time_ns(), reason="test halt", halt=control_pb2.HaltState(halted=True)
    )
    bus.publish(topics.CONTROL, "halt", signed(halt, topics.CONTROL, "halt"))
    wait_for(lambda: first.engine.halted, what="the halt")
    bus.publish(topics.DECISIONS, SYMBOL, signed(decision("h-2", qty=0.001, reference=MID)))
    refused = wait_for(lambda: [o for o in first.engine.orders.values() if o.intent_id == "h-2"], what="h-2")[0]
    assert refused.reject_code == "HALTED"
    held = first.engine.positions[SYMBOL].quantity
    first.stop()

    second = ExecutionService(settings(), bus)
    second.start()
    try:
        assert second.engine.halted and second.engine.positions[SYMBOL].quantity == held
        assert set(second.engine.orders) == set(first.engine.orders)
    finally:
        second.stop()


def test_live_needs_two_switches_and_embedded_runs_paper_only(bus: MemoryBus) -> None:
    with pytest.raises(ConfigError, match="allow_live"):
        ExecutionService(settings(venue="live"), bus)
    embedded = settings(venue="testnet")
    embedded.embedded = True
    with pytest.raises(ConfigError, match="paper"):
        ExecutionService(embedded, bus)


def test_testnet_without_its_secret_refuses_to_start_naming_path_and_reason(bus: MemoryBus) -> None:
    from quantumedge.secrets.errors import SecretsError
    from quantumedge.secrets.settings import VaultSettings

    cfg = settings(venue="testnet")
    cfg.vault = VaultSettings()  # whatever QE_VAULT_* the environment has: no Vault configured here
    with pytest.raises(SecretsError) as err:
        ExecutionService(cfg, bus)
    text = str(err.value)
    assert "quantumedge/exchange/binance-testnet" in text and "QE_VAULT_ADDR" in text


# -- gRPC ------------------------------------------------------------------------------------------
@pytest.fixture
def risk_and_execution(bus: MemoryBus) -> Iterator[tuple[ExecutionService, execution_pb2_grpc.ExecutionServiceStub]]:
    risk = RiskService(Settings(bus="memory", symbols=[SYMBOL, "ETHUSDT"]), bus)
    risk_server = GrpcServer(0, risk.grpc_services(), host="127.0.0.1")
    risk_server.start()
    risk.start()
    cfg = settings(risk_address=f"127.0.0.1:{risk_server.port}")
    cfg.ports = Ports(risk=risk_server.port)
    execution = ExecutionService(cfg, bus)
    server = GrpcServer(0, execution.grpc_services(), host="127.0.0.1")
    server.start()
    execution.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield execution, execution_pb2_grpc.ExecutionServiceStub(channel)
    finally:
        channel.close()
        server.stop(0)
        execution.stop()
        risk_server.stop(0)
        risk.stop()


def submit(**kw: Any) -> execution_pb2.SubmitOrderRequest:
    base = {
        "symbol": SYMBOL,
        "side": common_pb2.SIDE_BUY,
        "order_type": risk_pb2.ORDER_TYPE_MARKET,
        "quantity": 0.001,
        "request_id": "req-1",
    }
    return execution_pb2.SubmitOrderRequest(**{**base, **kw})


INVALID_SUBMITS = [
    ({"symbol": ""}, "symbol"),
    ({"side": common_pb2.SIDE_UNSPECIFIED}, "side"),
    ({"order_type": risk_pb2.ORDER_TYPE_UNSPECIFIED}, "order_type"),
    ({"quantity": 0}, "quantity"),
    ({"quantity": float("nan")}, "quantity"),
    ({"order_type": risk_pb2.ORDER_TYPE_LIMIT}, "limit_price"),
    ({"limit_price": 100.0}, "limit_price"),
    ({"stop_loss_price": -1.0}, "stop_loss_price"),
    ({"take_profit_price": 100.0, "stop_loss_price": 200.0}, "take_profit_price"),
]


@pytest.mark.parametrize(("fields", "named"), INVALID_SUBMITS)
def test_submit_order_validation_names_the_field(fields: dict, named: str) -> None:
    assert named in validate_submit(submit(**fields))
    assert validate_submit(submit()) == ""


def test_submit_order_with_invalid_arguments_is_refused(risk_and_execution: Any) -> None:
    # One rig for every case: each is refused at the gRPC surface before risk or the engine sees it.
    execution, stub = risk_and_execution
    for fields, named in INVALID_SUBMITS:
        with pytest.raises(grpc.RpcError) as err:
            stub.SubmitOrder(submit(**fields))
        assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT and named in err.value.details(), fields
        assert execution.engine.orders == {}


def test_submit_order_goes_through_risk_once_and_is_idempotent(bus: MemoryBus, risk_and_execution: Any) -> None:
    execution, stub = risk_and_execution
    # Risk approves nothing without fresh market data (it has seen execution's start-up report already).
    refused = stub.SubmitOrder(submit(request_id="too-early", symbol="ETHUSDT"))
    assert not refused.decision.approved and not refused.order.client_order_id
    assert primary_code(refused.decision) == "stale_market_data"
    publish_book(bus, execution)
    answer = stub.SubmitOrder(submit(take_profit_price=MID * 1.01, stop_loss_price=MID * 0.99))
    assert answer.decision.approved, list(answer.decision.reasons)
    assert answer.order.status in (execution_pb2.ORDER_STATUS_FILLED, execution_pb2.ORDER_STATUS_PENDING)
    again = stub.SubmitOrder(submit(take_profit_price=MID * 1.01, stop_loss_price=MID * 0.99))
    assert again.order.client_order_id == answer.order.client_order_id
    # Risk also published its decision on risk.decisions.v1; execution consumed it and found the order.
    wait_for(lambda: execution.engine.counters["duplicates_ignored"] >= 1, what="the published decision")
    entries = [o for o in execution.engine.orders.values() if o.role.name == "ENTRY"]
    assert len(entries) == 1
    listed = stub.ListOrders(execution_pb2.ListOrdersRequest(symbol=SYMBOL, open_only=True)).orders
    assert {o.role for o in listed} == {execution_pb2.ORDER_ROLE_TAKE_PROFIT, execution_pb2.ORDER_ROLE_STOP_LOSS}
    positions = stub.ListPositions(execution_pb2.ListPositionsRequest()).positions
    # Bought 0.001; Binance takes a buy's commission (10 bp) from the base asset: 0.000999 held, of which
    # 0.00099 is tradable (the lot step is 0.00001) and 0.000009 is reported as dust.
    held = [(p.quantity, p.dust_quantity) for p in positions if p.symbol == SYMBOL]
    assert held == [(pytest.approx(0.00099), pytest.approx(0.000009))]
    status = stub.GetStatus(execution_pb2.ExecutionServiceGetStatusRequest())
    assert status.venue == "paper" and status.open_orders == 2 and status.orders_placed >= 2


def test_cancel_all_and_flatten(bus: MemoryBus, risk_and_execution: Any) -> None:
    execution, stub = risk_and_execution
    publish_book(bus, execution)
    stub.SubmitOrder(submit(take_profit_price=MID * 1.01, stop_loss_price=MID * 0.99))
    canceled = stub.CancelAll(execution_pb2.CancelAllRequest(symbol=SYMBOL, reason="test"))
    assert canceled.canceled >= 1
    assert stub.ListOrders(execution_pb2.ListOrdersRequest(open_only=True)).orders == []
    flat = stub.Flatten(execution_pb2.FlattenRequest(reason="test"))
    assert flat.orders_sent == 1
    assert all(p.quantity == 0 for p in stub.ListPositions(execution_pb2.ListPositionsRequest()).positions)


def test_submit_order_fails_closed_when_risk_is_unreachable(bus: MemoryBus) -> None:
    cfg = settings(risk_address="127.0.0.1:1", risk_timeout_s=0.5)
    execution = ExecutionService(cfg, bus)
    server = GrpcServer(0, execution.grpc_services(), host="127.0.0.1")
    server.start()
    execution.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel, pytest.raises(grpc.RpcError) as err:
            execution_pb2_grpc.ExecutionServiceStub(channel).SubmitOrder(submit())
        assert err.value.code() is grpc.StatusCode.UNAVAILABLE and "fail closed" in err.value.details()
        assert execution.engine.orders == {}
    finally:
        server.stop(0)
        execution.stop()


def test_submit_order_refuses_an_answer_risk_did_not_sign(bus: MemoryBus) -> None:
    """Whoever answers on risk's address (a man in the middle without mutual TLS) cannot approve an order."""
    from quantumedge.v1 import risk_pb2_grpc

    class Impostor(risk_pb2_grpc.RiskServiceServicer):
        def ReviewOrder(self, request, context):
            forged = decision(request.intent.intent_id, qty=request.intent.quantity, reference=MID)
            return risk_pb2.ReviewOrderResponse(decision=forged)  # approved, unsigned

    impostor = GrpcServer(
        0,
        [(risk_pb2_grpc.add_RiskServiceServicer_to_server, Impostor(), "quantumedge.v1.RiskService")],
        host="127.0.0.1",
    )
    impostor.start()
    execution = ExecutionService(settings(risk_address=f"127.0.0.1:{impostor.port}"), bus)
    server = GrpcServer(0, execution.grpc_services(), host="127.0.0.1")
    server.start()
    execution.start()
    try:
        publish_book(bus, execution)
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel, pytest.raises(grpc.RpcError) as err:
            execution_pb2_grpc.ExecutionServiceStub(channel).SubmitOrder(submit())
        assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED and "unsigned" in err.value.details()
        assert execution.engine.orders == {}
        audits = [control_pb2.ControlEvent.FromString(r.value) for r in bus.read_all(topics.AUDIT)]
        assert [a.audit.reason_code for a in audits] == [signing.UNSIGNED]
    finally:
        server.stop(0)
        execution.stop()
        impostor.stop(0)


def test_a_heartbeat_goes_out_as_soon_as_the_bus_is_back(bus: MemoryBus) -> None:
    """Risk refuses everything (stale_execution_state) until execution is heard again, and an outage usually
    outlasts its silence bound: execution beats at once when the bus answers, not an interval later."""
    svc = ExecutionService(settings(heartbeat_interval_s=3600.0), bus)
    svc.start()
    reports = Reports(bus)
    try:
        wait_for(lambda: any(r.note.startswith("execution online") for r in reports.drain()), what="online")
        beats = lambda: [r for r in reports.drain() if r.note == "heartbeat"]  # noqa: E731
        bus.outage.failed("test", "broker down")
        time.sleep(0.3)  # several housekeeping rounds see the bus down
        assert beats() == []  # an hour-long interval: nothing beats on its own
        bus.outage.ok("test")
        beat = wait_for(beats, what="a heartbeat after the outage")
        assert {r.position.symbol for r in beat} >= {SYMBOL}
    finally:
        svc.stop()


def test_on_the_lockstep_clock_the_tick_sends_the_heartbeat_that_fell_due(bus: MemoryBus) -> None:
    """Due by time alone, a heartbeat goes out when lockstep ticks the present (before the step's events), so
    the marks it reports are the step before's, never whichever of the step's events a thread handled first."""
    from quantumedge.shared.market_clock import MarketClock

    start = 1_700_000_000_000_000_000
    clock = MarketClock(start)
    svc = ExecutionService(settings(heartbeat_interval_s=5.0), bus, clock=clock)
    svc.start()
    reports = Reports(bus)
    try:
        beats = lambda: [r for r in reports.drain() if r.note == "heartbeat"]  # noqa: E731
        wait_for(lambda: any(r.note.startswith("execution online") for r in reports.drain()), what="online")
        svc.tick(clock.advance(start + 5 * 10**9))
        first = beats()
        assert {r.position.symbol for r in first} == {SYMBOL, "ETHUSDT"}
        assert {r.time_ns for r in first} == {start + 5 * 10**9}
        svc.tick(clock.advance(start + 9 * 10**9))  # 4 s of market since: not due
        svc.tick(start + 9 * 10**9)
        assert beats() == first  # drain() keeps what it saw: nothing new
        svc.tick(clock.advance(start + 10 * 10**9))
        assert [r.time_ns for r in beats()[len(first) :]] == [start + 10 * 10**9] * 2
    finally:
        svc.stop()

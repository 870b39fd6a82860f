"""Observe-only execution: the pure report builder, and the service sending nothing while reporting each
approved decision as observed (a hypothetical fill at the touch, never a fill)."""

from __future__ import annotations

import math

import grpc
import pytest

from quantumedge.execution.observe import BAD_QUANTITY, NO_TOUCH, VENUE_NAME, Touch, TouchBook, observed_report
from quantumedge.execution.service import ExecutionService
from quantumedge.execution.settings import ExecutionSettings
from quantumedge.settings import Settings
from quantumedge.shared import topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.shared.grpc_server import GrpcServer
from quantumedge.v1 import common_pb2, execution_pb2, execution_pb2_grpc, risk_pb2
from tests.support.execution_builders import decision, top
from tests.support.signing import signed
from tests.unit.execution.test_service import MID, SYMBOL, Reports, book_event, wait_for


def test_a_buy_is_observed_at_the_ask_and_a_sell_at_the_bid_with_the_taker_fee() -> None:
    touch = Touch(bid=99.0, ask=101.0, time_ns=5)
    buy = observed_report(decision("o-1", qty=2.0), touch, taker_fee_bps=10.0, now_ns=7)
    assert buy.observed and buy.venue == VENUE_NAME and not buy.HasField("fill") and not buy.HasField("position")
    assert buy.realized_pnl_delta == 0 and buy.fee_delta == 0
    assert (buy.hypothetical_fill.price, buy.hypothetical_fill.quantity) == (101.0, 2.0)
    assert buy.hypothetical_fill.fee == pytest.approx(101.0 * 2.0 * 10 / 10_000)
    assert buy.order.role == execution_pb2.ORDER_ROLE_ENTRY and buy.order.intent_id == "o-1"
    sell = observed_report(decision("o-2", side=common_pb2.SIDE_SELL, kind=risk_pb2.INTENT_KIND_EXIT), touch, 10.0, 7)
    assert sell.hypothetical_fill.price == 99.0 and sell.order.role == execution_pb2.ORDER_ROLE_EXIT
    assert sell.order.client_order_id != buy.order.client_order_id


def test_without_a_touch_or_with_a_bad_quantity_there_is_no_hypothetical_fill() -> None:
    none = observed_report(decision("o-3"), None, 10.0, 1)
    assert none.observed and not none.HasField("hypothetical_fill") and none.note.startswith(NO_TOUCH)
    bad = observed_report(decision("o-4", qty=math.nan), Touch(1.0, 2.0, 1), 10.0, 1)
    assert not bad.HasField("hypothetical_fill") and bad.note.startswith(BAD_QUANTITY)


def test_the_touch_book_refuses_crossed_empty_and_non_finite_quotes() -> None:
    book = TouchBook()
    book.on_market(top(1, 100.0, 1.0, 101.0, 1.0))
    for bad in (top(2, 102.0, 1.0, 101.0, 1.0), top(3, 0.0, 1.0, 101.0, 1.0), top(4, math.inf, 1.0, 101.0, 1.0)):
        book.on_market(bad)
    assert book.get(SYMBOL) == Touch(100.0, 101.0, 1)


def _observing(**execution: object) -> Settings:
    # A configured testnet venue with no key anywhere: observe-only must neither read a key nor build a client.
    cfg = ExecutionSettings(housekeeping_interval_s=0.05, mode="observe", venue="testnet", **execution)
    return Settings(bus="memory", symbols=[SYMBOL, "ETHUSDT"], execution=cfg)


def test_observe_mode_reports_each_approved_decision_once_and_sends_nothing() -> None:
    bus = MemoryBus()
    svc = ExecutionService(_observing(), bus)
    svc.start()
    try:
        reports = Reports(bus)
        bus.publish(topics.BOOK, SYMBOL, book_event(MID))
        wait_for(lambda: svc.touch.get(SYMBOL), what="the touch")
        bus.publish(topics.DECISIONS, SYMBOL, signed(decision("ob-1", qty=0.01, reference=MID)))
        bus.publish(topics.DECISIONS, SYMBOL, signed(decision("ob-2", qty=0.01, approved=False)))
        observed = wait_for(lambda: [r for r in reports.drain() if r.observed], what="an observed report")
        wait_for(lambda: svc.engine.counters["ignored_decisions"] == 0 and svc.observed_reports == 1, what="ob-1")
        assert [r.order.intent_id for r in observed] == ["ob-1"]
        assert observed[0].hypothetical_fill.price == MID + 0.5
        assert not any(r.HasField("fill") for r in reports.drain())
        assert svc.engine.orders == {} and svc.venue.name == VENUE_NAME
        assert bus.read_all(topics.EXEC_STATE) == []  # a trading execution's state is never overwritten
    finally:
        svc.stop()
        bus.close()


def test_observe_mode_refuses_manual_orders() -> None:
    bus = MemoryBus()
    svc = ExecutionService(_observing(), bus)
    server = GrpcServer(0, svc.grpc_services(), host="127.0.0.1")
    server.start()
    svc.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = execution_pb2_grpc.ExecutionServiceStub(channel)
            request = execution_pb2.SubmitOrderRequest(
                symbol=SYMBOL, side=common_pb2.SIDE_BUY, order_type=risk_pb2.ORDER_TYPE_MARKET, quantity=0.001
            )
            with pytest.raises(grpc.RpcError) as err:
                stub.SubmitOrder(request, timeout=10)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        server.stop(0)
        svc.stop()
        bus.close()

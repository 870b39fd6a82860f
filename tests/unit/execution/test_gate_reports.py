"""Execution's decision gate answers a verified entry it refuses (too old, out of bounds) with a REJECTED order
report under its intent id, so risk releases `entry_pending` at once; forgeries and replays get no answer."""

from __future__ import annotations

import math
import time

from quantumedge.execution.service import ExecutionService
from quantumedge.shared import signing, topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.v1 import dlq_pb2, execution_pb2, risk_pb2
from tests.support.execution_builders import decision
from tests.support.signing import signed
from tests.unit.execution.test_service import MID, SYMBOL, Reports, bus, publish_book, service, wait_for

__all__ = ["bus", "service"]  # pytest fixtures imported from test_service

HOUR_NS = 3600 * 1_000_000_000


def _rejected(reports: Reports, intent_id: str) -> list[execution_pb2.Order]:
    return [
        r.order
        for r in reports.drain()
        if r.order.intent_id == intent_id and r.order.status == execution_pb2.ORDER_STATUS_REJECTED
    ]


def _letters(bus: MemoryBus) -> list[str]:
    return [dlq_pb2.DeadLetter.FromString(r.value).reason_code for r in bus.read_all(topics.DLQ)]


def test_a_stale_verified_entry_is_reported_rejected_once(bus: MemoryBus, service: ExecutionService) -> None:
    reports = Reports(bus)
    publish_book(bus, service)
    old = signed(decision("old-1", qty=0.001, reference=MID, decided_ns=time.time_ns() - HOUR_NS))
    bus.publish(topics.DECISIONS, SYMBOL, old)
    [order] = wait_for(lambda: _rejected(reports, "old-1"), what="the REJECTED report")
    assert order.reject_code == signing.STALE and order.role == execution_pb2.ORDER_ROLE_ENTRY
    bus.publish(topics.DECISIONS, SYMBOL, old)  # the same record again: a replay, never answered
    wait_for(lambda: _letters(bus) == [signing.STALE, signing.REPLAYED], what="both dead letters")
    assert len(_rejected(reports, "old-1")) == 1
    assert service.engine.counters["orders_placed"] == 0  # never the venue


def test_an_out_of_bounds_verified_entry_is_reported_rejected(bus: MemoryBus, service: ExecutionService) -> None:
    reports = Reports(bus)
    publish_book(bus, service)
    absurd = decision("nan-1", qty=0.001, reference=MID)
    absurd.intent.take_profit_price = math.nan
    bus.publish(topics.DECISIONS, SYMBOL, signed(absurd))
    [order] = wait_for(lambda: _rejected(reports, "nan-1"), what="the REJECTED report")
    assert order.reject_code == "non_finite"
    assert _letters(bus) == ["non_finite"]


def test_a_forged_or_exit_decision_gets_no_report(bus: MemoryBus, service: ExecutionService) -> None:
    reports = Reports(bus)
    publish_book(bus, service)
    forged = signed(decision("forged-1", qty=0.001, reference=MID, decided_ns=time.time_ns() - HOUR_NS))
    forged.intent.quantity = 5.0  # changed after signing
    bus.publish(topics.DECISIONS, SYMBOL, forged)
    old_exit = decision("exit-1", qty=0.001, reference=MID, kind=risk_pb2.INTENT_KIND_EXIT)
    old_exit.decided_time_ns = time.time_ns() - HOUR_NS
    bus.publish(topics.DECISIONS, SYMBOL, signed(old_exit))
    wait_for(lambda: len(_letters(bus)) == 2, what="both dead letters")
    assert _letters(bus) == [signing.BAD_SIGNATURE, signing.STALE]
    reports.drain()
    assert not [r for r in reports.seen if r.order.intent_id in ("forged-1", "exit-1")]
    assert service.engine.orders == {}

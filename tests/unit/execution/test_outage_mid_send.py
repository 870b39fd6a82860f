"""The broker goes down while execution persists an order PENDING before sending it (issue 15): the order
is not sent (it is not durable), the decision is not dead-lettered, and once the broker answers the consumer
loop runs the decision again, which sends that same order exactly once. Before, the flush's BusUnavailable
reached the loop as a handler failure and the decision went to the dead-letter topic."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from quantumedge.execution.service import ExecutionService
from quantumedge.shared import topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.shared.bus.base import BusUnavailable
from quantumedge.v1 import dlq_pb2
from tests.support.execution_builders import decision
from tests.support.signing import signed
from tests.support.waiting import wait_for
from tests.unit.execution.test_service import MID, SYMBOL, Reports, publish_book, settings


class BrokerDownOnce(MemoryBus):
    """The in-process bus whose next flush from the decisions thread times out, as Kafka's does when the
    broker goes away between a publish and its acknowledgement."""

    armed = False

    def flush(self, timeout_s: float = 10.0) -> None:
        if self.armed and threading.current_thread().name.endswith("-decisions"):
            self.armed = False
            raise BusUnavailable("kafka flush failed: KafkaTimeoutError('Timeout waiting for future')")
        super().flush(timeout_s)


@pytest.fixture
def bus() -> Iterator[BrokerDownOnce]:
    b = BrokerDownOnce()
    yield b
    b.close()


def test_a_flush_that_meets_an_outage_sends_the_order_once_the_broker_is_back(bus: BrokerDownOnce) -> None:
    svc = ExecutionService(settings(), bus)
    svc.start()
    try:
        reports = Reports(bus)
        publish_book(bus, svc)
        bus.armed = True
        bus.publish(topics.DECISIONS, SYMBOL, signed(decision("mid-outage", qty=0.001, reference=MID)))
        order = wait_for(
            lambda: next((o for o in svc.engine.orders.values() if o.intent_id == "mid-outage"), None),
            what="the order",
        )
        fills = wait_for(lambda: reports.fills(order.client_order_id), what="its fill")
        assert not bus.armed and svc._loop.retried_after_outage == 1
        assert sum(f.quantity for f in fills) == pytest.approx(0.001)
        assert [o.intent_id for o in svc.engine.orders.values()].count("mid-outage") == 1
        assert svc.engine.counters["orders_placed"] == 1 and not order.unsent
        letters = [dlq_pb2.DeadLetter.FromString(r.value) for r in bus.read_all(topics.DLQ)]
        assert not [d for d in letters if d.source_topic == topics.DECISIONS]
    finally:
        svc.stop()

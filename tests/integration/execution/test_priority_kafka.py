"""With a backlog of market data waiting on a real broker, a decision published after it reaches the (paper)
venue before execution has consumed the backlog: decisions and control records have their own consumer.

The order of events is read from the fill itself: the paper venue fills on the market's clock, and every
record of the flood carries its index in its exchange time, so the fill says how much of the backlog had been
handled when the order was at the venue. Without the priority consumer the decision, published last, was
handled after every market record (the fill would carry the last index)."""

from __future__ import annotations

import time
import uuid

import pytest

from quantumedge.execution.service import ExecutionService
from quantumedge.execution.settings import ExecutionSettings
from quantumedge.settings import Settings
from quantumedge.shared import topics
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.config import KafkaSettings
from quantumedge.v1 import execution_pb2, risk_pb2
from tests.integration.execution.rig import wait_until
from tests.support.execution_builders import decision
from tests.support.flood import MID, flood_index, publish_flood
from tests.support.signing import session_signing_settings, signed_for_serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SYMBOL, FLOOD = "BTCUSDT", 20_000


def loop_done(service: ExecutionService) -> int:
    """Market records the loop is past: handled, or skipped as books a newer one of the batch replaced."""
    loop = service._market_loop
    return loop.handled + loop.coalesced if loop is not None else 0


def test_a_decision_overtakes_a_market_backlog(kafka_bootstrap: str) -> None:
    kafka = KafkaSettings(bootstrap=kafka_bootstrap, allow_plaintext=True, topic_prefix=f"prio-{uuid.uuid4().hex[:8]}.")
    settings = Settings(
        bus="kafka",
        kafka=kafka,
        symbols=[SYMBOL, "ETHUSDT"],
        signing=session_signing_settings(),
        execution=ExecutionSettings(venue="paper", housekeeping_interval_s=0.2),
    )
    producer = KafkaBus(kafka, symbols=settings.symbols)
    producer.ensure_topics()
    # A first run of execution fixes the group's positions, then stops: what follows waits for the next one.
    first = ExecutionService(settings, KafkaBus(kafka, symbols=settings.symbols))
    first.start()
    first.stop()

    t0 = time.time_ns()
    publish_flood(producer, SYMBOL, t0, FLOOD)
    # A resting buy priced above every ask of the flood: it trades on the first book the venue sees after it.
    order = decision(
        f"prio-{uuid.uuid4().hex[:6]}",
        qty=0.01,
        order_type=risk_pb2.ORDER_TYPE_LIMIT,
        tif=risk_pb2.TIME_IN_FORCE_GTC,
        limit=MID + 100.0,
        reference=MID,
    )
    producer.publish(topics.DECISIONS, SYMBOL, signed_for_serve(order))
    producer.flush()

    service = ExecutionService(settings, KafkaBus(kafka, symbols=settings.symbols))
    reports = producer.consumer(f"prio-reports-{uuid.uuid4().hex[:6]}", [topics.REPORTS], from_beginning=True)
    fills: list[execution_pb2.Fill] = []

    def filled() -> bool:
        for record in reports.poll(0.2, 1000):
            report = execution_pb2.ExecutionReport.FromString(record.value)
            if report.HasField("fill"):
                fills.append(report.fill)
        return bool(fills)

    service.start()
    try:
        wait_until(filled, 120, "the decision's fill")
        wait_until(lambda: loop_done(service) >= FLOOD, 120, "execution to consume the backlog")
    finally:
        service.stop()
        reports.close()
        producer.close()
    index = flood_index(t0, fills[0].time_ns)
    print(
        f"decision filled at market record {index} of a backlog of {FLOOD} ({service._market_loop.coalesced} coalesced)"
    )
    assert 0 <= index < FLOOD - 1
    # It rested on the venue before the book of the backlog reached it, so it was filled as a maker at its own
    # price: behind the backlog it would have met the last ask at once and taken it.
    assert fills[0].is_maker and fills[0].price == pytest.approx(MID + 100.0)

"""With a backlog of market data waiting on a real broker, a Halt written to control.v1 is applied by risk before
the backlog is consumed: control records have their own consumer in risk's group.

The halt is published once risk has rebuilt and begun on the backlog (a halt already on the topic at start-up
would be taken by the rebuild, which proves nothing about the loops). The order is read at the moment the
halt is applied: how many market records the other consumer had handled, and which record of the flood
(each carries its index in its exchange time) risk's mark came from."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from quantumedge.risk.service import RiskService
from quantumedge.settings import Settings
from quantumedge.shared import topics
from quantumedge.shared.admission import HALT_KEY
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.config import KafkaSettings
from quantumedge.v1 import common_pb2, control_pb2
from tests.support.flood import flood_index, publish_flood
from tests.support.risk_builders import quiet_settings
from tests.support.signing import session_signing_settings, signed_for_serve
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SYMBOL, FLOOD = "BTCUSDT", 20_000


def halt_event() -> control_pb2.ControlEvent:
    """A halt as another risk instance writes it (signed with the key the service under test trusts)."""
    now = time.time_ns()
    event = control_pb2.ControlEvent(
        event_id=str(uuid.uuid4()),
        time_ns=now,
        reason="priority test halt",
        actor=common_pb2.Actor(subject="priority-test"),
        halt=control_pb2.HaltState(halted=True, limit="operator", since_ns=now),
    )
    return signed_for_serve(event, topics.CONTROL, HALT_KEY)


def test_a_halt_overtakes_a_market_backlog(kafka_bootstrap: str) -> None:
    prefix = f"rprio-{uuid.uuid4().hex[:8]}."
    kafka = KafkaSettings(bootstrap=kafka_bootstrap, allow_plaintext=True, topic_prefix=prefix)
    settings = Settings(
        bus="kafka", kafka=kafka, symbols=[SYMBOL, "ETHUSDT"], signing=session_signing_settings(), risk=quiet_settings()
    )
    producer = KafkaBus(kafka, symbols=settings.symbols)
    producer.ensure_topics()
    # A first run of risk fixes the group's positions, then stops: what follows waits for the next one.
    first = RiskService(settings, KafkaBus(kafka, symbols=settings.symbols))
    first.start()
    first.stop()

    t0 = time.time_ns()
    publish_flood(producer, SYMBOL, t0, FLOOD)
    producer.flush()

    service = RiskService(settings, KafkaBus(kafka, symbols=settings.symbols))
    seen: list[tuple[int, int, str]] = []
    apply = service.engine.apply_halt_event

    def observed(state: control_pb2.HaltState, reason: str) -> bool:
        # What the market consumer had done when the halt was applied, and on which thread it was applied.
        mark = service.engine.market.symbols.get(SYMBOL)
        seen.append((service._loop.handled, mark.market_ns if mark else 0, threading.current_thread().name))
        return apply(state, reason)

    service.engine.apply_halt_event = observed  # type: ignore[method-assign]
    service.start()
    try:
        wait_for(lambda: service._loop.handled > 0, 120, "risk to begin on the backlog")
        published_at = service._loop.handled
        producer.publish(topics.CONTROL, HALT_KEY, halt_event())
        producer.flush()
        wait_for(lambda: service.engine.halted, 120, "the halt to be applied")
        wait_for(lambda: service._loop.handled >= FLOOD, 180, "risk to consume the backlog")
    finally:
        service.stop()
        producer.close()
    assert published_at < FLOOD, "the backlog was consumed before the halt could be published: nothing measured"
    handled, mark_ns, thread = seen[-1]
    index = flood_index(t0, mark_ns)
    print(f"halt applied after {handled} of {FLOOD} market records (mark from record {index}) on {thread}")
    assert thread == "risk-control"
    assert handled < FLOOD and 0 <= index < FLOOD - 1

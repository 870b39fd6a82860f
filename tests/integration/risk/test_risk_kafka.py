"""Risk on a real Kafka broker: each state limit, fed by execution reports, halts it; the halt lands on control.v1,
and a risk service restarted while halted is still halted; one with stale data approves nothing."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest
from kafka import KafkaAdminClient

from quantumedge.shared import topics
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.config import KafkaSettings
from quantumedge.v1 import control_pb2, execution_pb2, risk_pb2
from tests.support.risk_builders import FakeClock, quiet_settings, report, signal, snapshot
from tests.support.risk_cases import HALTING_CASES, Case
from tests.support.risk_rig import OPERATOR_SUBJECT, Rig


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> Iterator[KafkaSettings]:
    """Topics and groups of this test only: a unique prefix on the shared broker, deleted afterwards."""
    settings = KafkaSettings(
        bootstrap=kafka_bootstrap, allow_plaintext=True, topic_prefix=f"risk-it-{uuid.uuid4().hex[:8]}."
    )
    bus = KafkaBus(settings)
    bus.ensure_topics()
    bus.close()
    yield settings
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="qe-test-risk")
    with contextlib.suppress(Exception):
        admin.delete_topics([f"{settings.topic_prefix}{spec.name}" for spec in topics.ALL], timeout_ms=30_000)
    admin.close()


def _rig(kafka: KafkaSettings, clock: FakeClock | None = None, **overrides: object) -> Rig:
    rig = Rig(KafkaBus(kafka), quiet_settings(**overrides), clock=clock, bus_kind="kafka", kafka=kafka)
    rig.start()
    return rig


@pytest.mark.parametrize("case", HALTING_CASES, ids=lambda c: c.limit)
def test_limit_from_execution_reports_halts_over_kafka(kafka_settings: KafkaSettings, case: Case) -> None:
    rig = _rig(kafka_settings, halt_on=[case.limit], **case.overrides)
    try:
        rig.reports([snapshot(rig.clock.now)])
        rig.market(["BTCUSDT", "ETHUSDT", "SOLUSDT"])
        before = rig.decide(signal("SOLUSDT", t_ns=rig.clock.now))
        assert before.approved, before.reasons
        rig.reports(
            [
                report(
                    "SOLUSDT",
                    rig.clock.now,
                    intent_id=before.intent.intent_id,
                    status=execution_pb2.ORDER_STATUS_REJECTED,
                    quantity=before.intent.quantity,
                )
            ]
        )

        rig.reports(case.drive(rig.clock.now))

        event = rig.watcher.wait_halt()
        assert event.halt.limit == case.limit
        assert event.halt.value == pytest.approx(case.value) and event.halt.threshold == pytest.approx(case.threshold)
        assert rig.status().halted
        refused = rig.decide(signal("SOLUSDT", t_ns=rig.clock.now))
        assert not refused.approved
        assert any(r.startswith(f"halted: automatic: {case.limit} breached") for r in refused.reasons)
    finally:
        rig.close(close_bus=True)


def test_halt_rpc_lands_on_control_and_a_restarted_service_stays_halted(kafka_settings: KafkaSettings) -> None:
    clock = FakeClock()
    first = _rig(kafka_settings, clock=clock)
    try:
        first.reports([snapshot(clock.now)])
        first.market()
        first.stub.Halt(
            risk_pb2.HaltRequest(reason="drill", cancel_open_orders=True, flatten=False),
            metadata=first.operator,
        )
        # What execution consumes: the HaltState record on control.v1 under key "halt".
        event = first.watcher.wait_halt()
        assert event.halt.halted and event.halt.cancel_open_orders and not event.halt.flatten
        assert event.actor.subject == OPERATOR_SUBJECT and event.reason == "drill"
        compacted = [r for r in first.bus.read_all(topics.CONTROL) if r.key == b"halt"]
        assert control_pb2.ControlEvent.FromString(compacted[-1].value).halt.halted
    finally:
        first.close(close_bus=True)

    # A new process: new bus client, same topics. It must come back halted, from control.v1 alone.
    clock.advance(30)
    second = _rig(kafka_settings, clock=clock)
    try:
        status = second.status()
        assert status.halted and status.halt_reason == "drill"
        assert status.execution_reports_seen >= 1  # rebuilt from execution.reports.v1
        second.market()
        refused = second.decide(signal("BTCUSDT", t_ns=clock.now))
        assert not refused.approved and "halted: drill" in refused.reasons

        # Resumed, but the market data it has is older than max_data_age: still nothing is approved.
        second.stub.Resume(risk_pb2.ResumeRequest(reason="drill over"), metadata=second.operator)
        clock.advance(10)
        stale = second.decide(signal("BTCUSDT", t_ns=clock.now))
        assert not stale.approved and stale.reasons[0].startswith("stale_market_data: BTCUSDT data 10.0s old")
        second.market()
        assert second.decide(signal("BTCUSDT", t_ns=clock.now)).approved
    finally:
        second.close(close_bus=True)

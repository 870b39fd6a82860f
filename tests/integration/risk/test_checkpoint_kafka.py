"""On a real Kafka broker: risk's graceful stop writes its signed checkpoint to risk.checkpoint.v1, and a restart
reads execution.reports.v1 only from the checkpoint's offsets on, ending in the ledger a full rebuild gives."""

from __future__ import annotations

import math

from quantumedge.shared import topics
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.config import KafkaSettings
from quantumedge.v1 import execution_pb2, risk_pb2
from tests.integration.risk.test_risk_kafka import _rig, kafka_settings  # noqa: F401 - the fixture
from tests.support.risk_builders import NS, ledger_state, report, round_trip, snapshot


def _restart(rig, kafka: KafkaSettings, **risk: object) -> None:
    rig.stop_service()
    rig.bus.close()
    rig.bus = KafkaBus(kafka)
    rig.set_risk(**risk)
    rig.start()


def test_a_restart_reads_the_reports_from_the_checkpoint_offsets(kafka_settings: KafkaSettings) -> None:  # noqa: F811
    rig = _rig(kafka_settings)
    try:
        t = rig.clock.now
        before = [snapshot(t, equity=10_000.0)]
        for i, pnl in enumerate([-30.0, 45.0, -20.0]):
            before += round_trip("BTCUSDT" if i % 2 else "ETHUSDT", t + (i + 1) * 60 * NS, pnl=pnl)
        rig.reports(before)
        rig.stop_service()  # writes and flushes the checkpoint
        cps = [risk_pb2.RiskCheckpoint.FromString(r.value) for r in rig.bus.read_all(topics.RISK_CHECKPOINT)]
        assert cps and sum(cps[-1].report_offsets.values()) == len(before)

        after = [*round_trip("BTCUSDT", t + 900 * NS, pnl=-25.0), report("BTCUSDT", t + 960 * NS, realized=math.nan)]
        for r in after:
            rig.bus.publish(topics.REPORTS, r.position.symbol or r.order.symbol or None, r)
        rig.bus.flush()
        rig.bus.close()
        rig.bus = KafkaBus(kafka_settings)
        rig.start()
        assert rig.service.rebuild_from == "checkpoint"
        assert rig.service.rebuild_read == len(after)
        restored = ledger_state(rig.service.engine.ledger)
        assert restored["loss_streak"] == 2

        _restart(rig, kafka_settings, checkpoint_every_reports=0)  # checkpoints off: the whole topic again
        assert rig.service.rebuild_from == "reports" and rig.service.rebuild_read == len(before) + len(after)
        assert ledger_state(rig.service.engine.ledger) == restored
    finally:
        rig.close(close_bus=True)


def test_a_report_list_is_read_from_given_offsets(kafka_settings: KafkaSettings) -> None:  # noqa: F811
    bus = KafkaBus(kafka_settings)
    try:
        for i in range(12):
            bus.publish(topics.REPORTS, f"k{i}", execution_pb2.ExecutionReport(report_id=f"r{i}", time_ns=i + 1))
        bus.flush()
        every = bus.read_all(topics.REPORTS)
        start = {p: 1 for p in {r.partition for r in every}}
        later = bus.read_from(topics.REPORTS, start)
        assert {(r.partition, r.offset) for r in later} == {(r.partition, r.offset) for r in every if r.offset >= 1}
        assert bus.read_from(topics.REPORTS, {p: 10**9 for p in start}) == []  # past the end: nothing, no wait
    finally:
        bus.close()

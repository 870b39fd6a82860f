"""On a real Kafka broker: an execution report with realized_pnl_delta = NaN lands on dlq.v1 with its reason
code, risk's equity stays finite, risk keeps deciding, and a restart's replay skips it (issue 15)."""

from __future__ import annotations

import math
import time

from quantumedge.shared import bounds, topics
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.config import KafkaSettings
from quantumedge.v1 import dlq_pb2
from tests.integration.risk.test_risk_kafka import _rig, kafka_settings  # noqa: F401 - the fixture
from tests.support.risk_builders import report, signal, snapshot


def _dead_letters(rig, deadline_s: float = 60.0) -> list[dlq_pb2.DeadLetter]:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        letters = [dlq_pb2.DeadLetter.FromString(r.value) for r in rig.bus.read_all(topics.DLQ, timeout_s=5.0)]
        letters = [d for d in letters if d.source_topic == topics.REPORTS]
        if letters:
            return letters
        time.sleep(0.5)
    raise AssertionError("no dead letter for the poisoned report")


def test_a_nan_report_is_dead_lettered_over_kafka(kafka_settings: KafkaSettings) -> None:  # noqa: F811
    rig = _rig(kafka_settings)
    try:
        rig.reports([snapshot(rig.clock.now, equity=10_000.0)])
        poisoned = report("BTCUSDT", rig.clock.now, realized=math.nan)
        rig.bus.publish(topics.REPORTS, "BTCUSDT", poisoned)
        rig.bus.flush()
        letter = _dead_letters(rig)[0]
        assert letter.reason_code == bounds.NON_FINITE and "realized_pnl_delta" in letter.reason
        assert letter.value == poisoned.SerializeToString()
        assert math.isfinite(rig.status().equity)
        rig.market()
        assert rig.decide(signal("ETHUSDT", t_ns=rig.clock.now, mid=3000.0)).approved
        rig.stop_service()
        rig.bus = KafkaBus(kafka_settings)
        rig.set_risk(checkpoint_every_reports=0)  # the whole topic replayed (a checkpoint covers the poison)
        rig.start()
        assert math.isfinite(rig.status().equity) and rig.service.rebuild_skipped == {bounds.NON_FINITE: 1}
    finally:
        rig.close(close_bus=True)

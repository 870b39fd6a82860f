"""Risk on the in-process bus restarts from its checkpoint: it reads only the reports after it and ends in the
ledger a full rebuild gives; a forged, tampered or corrupt checkpoint is refused and the full rebuild runs."""

from __future__ import annotations

import logging
import math

import pytest

from quantumedge.risk import checkpointing
from quantumedge.shared import signing, topics
from quantumedge.shared.bus.memory import MemoryBus
from quantumedge.shared.signing import ephemeral_keyring
from quantumedge.v1 import execution_pb2, risk_pb2
from tests.support.risk_builders import NS, FakeClock, ledger_state, quiet_settings, report, round_trip, snapshot
from tests.support.risk_rig import Rig

FALLBACK = "risk checkpoint refused: rebuilding from the whole execution.reports.v1 topic"


def _before(t: int) -> list[execution_pb2.ExecutionReport]:
    out = [snapshot(t, equity=10_000.0)]
    for i, pnl in enumerate([-30.0, 45.0, -20.0, -15.0]):
        out += round_trip("BTCUSDT" if i % 2 else "ETHUSDT", t + (i + 1) * 60 * NS, pnl=pnl)
    out.append(report("ETHUSDT", t + 600 * NS, position_qty=0.2, avg_price=3_000.0, intent_id="eth-open"))
    return out


def _after(t: int, earlier: list[execution_pb2.ExecutionReport]) -> list[execution_pb2.ExecutionReport]:
    """Reports while risk is down: a loss, a working order, poison, and execution re-sending an old report."""
    out = round_trip("BTCUSDT", t + 900 * NS, pnl=-25.0)
    out.append(report("BTCUSDT", t + 960 * NS, intent_id="btc-w", status=execution_pb2.ORDER_STATUS_NEW, quantity=0.01))
    out.append(report("BTCUSDT", t + 970 * NS, realized=math.nan))
    out.append(earlier[3])
    return out


def _publish(bus: MemoryBus, reports: list[execution_pb2.ExecutionReport]) -> None:
    for r in reports:
        bus.publish(topics.REPORTS, r.position.symbol or r.order.symbol or None, r)


def _full_rebuild(reports: list[execution_pb2.ExecutionReport], clock: FakeClock) -> dict:
    """A risk with no checkpoint, started on a bus holding every report."""
    bus = MemoryBus()
    _publish(bus, reports)
    rig = Rig(bus, quiet_settings(), clock=clock)
    try:
        rig.start()
        assert rig.service.rebuild_from == "reports" and rig.service.rebuild_read == len(reports)
        return ledger_state(rig.service.engine.ledger)
    finally:
        rig.close(close_bus=True)


def _stopped_with_checkpoint(clock: FakeClock) -> tuple[Rig, list[execution_pb2.ExecutionReport]]:
    rig = Rig(MemoryBus(), quiet_settings(), clock=clock)
    rig.start()
    before = _before(clock.now)
    rig.reports(before)
    rig.stop_service()  # a graceful stop writes the checkpoint
    return rig, before


def test_a_restart_reads_only_the_reports_after_the_checkpoint_and_ends_as_a_full_rebuild() -> None:
    clock = FakeClock()
    rig, before = _stopped_with_checkpoint(clock)
    after = _after(clock.now, before)
    _publish(rig.bus, after)
    try:
        rig.start()
        svc = rig.service
        assert svc.rebuild_from == "checkpoint"
        assert svc.rebuild_read == len(after)  # not one report from before the checkpoint was read again
        assert svc.rebuild_skipped == {"non_finite": 1}
        restored = ledger_state(svc.engine.ledger)
    finally:
        rig.close(close_bus=True)
    assert restored == _full_rebuild(before + after, FakeClock(clock.now))
    assert restored["loss_streak"] == 3 and "btc-w" in restored["pending"]


def test_the_checkpoint_is_written_every_n_reports_and_covers_their_offsets() -> None:
    rig = Rig(MemoryBus(), quiet_settings(checkpoint_every_reports=4))
    try:
        rig.start()
        rig.reports(_before(rig.clock.now))  # 9 reports: checkpoints after the 4th and the 8th
        cps = [risk_pb2.RiskCheckpoint.FromString(r.value) for r in rig.bus.read_all(topics.RISK_CHECKPOINT)]
        assert len(cps) == 2 and sum(cps[-1].report_offsets.values()) == 8
        assert all(r.key == checkpointing.KEY.encode() for r in rig.bus.read_all(topics.RISK_CHECKPOINT))
    finally:
        rig.close(close_bus=True)


def _forged(cp: risk_pb2.RiskCheckpoint) -> bytes:
    cp.loss_streak = 0
    ephemeral_keyring("attacker").sign(cp, topics.RISK_CHECKPOINT, checkpointing.KEY)
    return cp.SerializeToString()


def _tampered(cp: risk_pb2.RiskCheckpoint) -> bytes:
    cp.peak_equity = 1.0  # risk's signature kept: it no longer matches
    return cp.SerializeToString()


@pytest.mark.parametrize(
    ("spoil", "code"),
    [(_forged, signing.UNKNOWN_KEY), (_tampered, signing.BAD_SIGNATURE), (lambda _cp: b"\xff\x00junk", "undecodable")],
    ids=["forged", "tampered", "corrupt"],
)
def test_a_bad_checkpoint_is_refused_and_risk_rebuilds_from_every_report(
    spoil, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    rig, before = _stopped_with_checkpoint(clock)
    genuine = risk_pb2.RiskCheckpoint.FromString(rig.bus.read_all(topics.RISK_CHECKPOINT)[-1].value)
    # Compaction keeps the last record under the key: the genuine one is gone, the bad one is what a start reads.
    rig.bus._logs[topics.RISK_CHECKPOINT] = [[] for _ in range(3)]
    rig.bus.publish(topics.RISK_CHECKPOINT, checkpointing.KEY, spoil(genuine))
    try:
        with caplog.at_level(logging.WARNING, logger="quantumedge.risk.checkpointing"):
            rig.start()
        assert rig.service.rebuild_from == "reports" and rig.service.rebuild_read == len(before)
        said = [r for r in caplog.records if r.getMessage() == FALLBACK]
        assert len(said) == 1 and said[0].refused == {code: 1}
        state = ledger_state(rig.service.engine.ledger)
    finally:
        rig.close(close_bus=True)
    assert state == _full_rebuild(before, FakeClock(clock.now))

"""A restored checkpoint plus the reports after it is the ledger a full replay builds, field by field: poisoned
reports skipped, duplicates (before and after the checkpoint) ignored, pending intents, marks, streaks and the
order-rate window carried over (issue 15, bounded restarts)."""

from __future__ import annotations

import math

import pytest

from quantumedge.risk import checkpoint
from quantumedge.risk.domain.state import Pending, RiskLedger
from quantumedge.shared import bounds
from quantumedge.v1 import execution_pb2, risk_pb2
from tests.support.risk_builders import NS, SELL, T0, ledger_state, report, round_trip, snapshot

DAY = 86_400 * NS


def _history() -> list[execution_pb2.ExecutionReport]:
    """Two days of reports: losses and a win, an open position, a working order, poison and duplicates."""
    out = [snapshot(T0 + NS, equity=10_000.0)]
    t = T0 + 10 * NS
    for i, pnl in enumerate([-40.0, -25.0, 60.0, -10.0, -30.0]):
        out += round_trip("BTCUSDT" if i % 2 else "ETHUSDT", t + i * 3600 * NS, pnl=pnl)
    out.append(report("SOLUSDT", t + 20 * 3600 * NS, position_qty=3.0, avg_price=150.0, intent_id="sol-1"))
    out.append(report("BTCUSDT", T0 + DAY + NS, position_qty=0.02, avg_price=51_000.0, fee=0.5, intent_id="btc-9"))
    working = report(
        "ETHUSDT", T0 + DAY + 2 * NS, intent_id="eth-7", status=execution_pb2.ORDER_STATUS_NEW, quantity=0.5
    )
    out.append(working)
    poisoned = report("BTCUSDT", T0 + DAY + 3 * NS, realized=math.nan)
    out.append(poisoned)
    out.append(report("ETHUSDT", T0 + DAY + 4 * NS, realized=math.inf))
    out += round_trip("ETHUSDT", T0 + DAY + 3600 * NS, pnl=-12.0)
    out.append(report("SOLUSDT", T0 + DAY + 7200 * NS, position_qty=0.0, avg_price=150.0, realized=-9.0))
    return out


def _valid(reports: list[execution_pb2.ExecutionReport]) -> list[execution_pb2.ExecutionReport]:
    """What the service's rebuild keeps: bounds.check_report refuses the poisoned ones."""
    return [r for r in reports if bounds.check_report(r) is None]


@pytest.mark.parametrize("cut", [1, 6, 12, 15, 18])
def test_restore_plus_the_reports_after_equals_a_full_rebuild(cut: int) -> None:
    history = _history()
    # A duplicate of an earlier report after the cut (execution re-sending it), and one straddling the cut.
    tail = [*history[cut:], history[cut - 1], history[2]]
    full = RiskLedger(10_000.0)
    full.replay(_valid(history[:cut] + tail))

    live = RiskLedger(10_000.0)
    live.replay(_valid(history[:cut]))
    cp = checkpoint.capture(live, {0: cut}, time_ns=T0 + 3 * DAY)
    decoded = risk_pb2.RiskCheckpoint.FromString(cp.SerializeToString())
    restored = RiskLedger(10_000.0)
    checkpoint.restore(restored, decoded)
    assert ledger_state(restored) == ledger_state(live)
    restored.replay(_valid(tail))

    assert ledger_state(restored) == ledger_state(full)
    assert full.reports_seen == len(_valid(history))  # the duplicates were ignored, the poison never applied


def test_pending_intents_and_the_order_rate_window_survive() -> None:
    led = RiskLedger(5_000.0)
    led.add_pending(Pending("i-1", "BTCUSDT", SELL, True, 0.01, 50_000.0, T0 + NS))
    led.apply_mark("BTCUSDT", 50_100.0, T0 + 2 * NS)
    restored = RiskLedger(5_000.0)
    checkpoint.restore(restored, checkpoint.capture(led, {}, time_ns=T0 + 3 * NS))
    assert restored.pending == led.pending and restored.orders_in_window(T0 + 3 * NS, 60 * NS) == 1
    restored.note_order("i-1", T0 + 4 * NS)  # the order key window came along: the same intent counts once
    assert restored.orders_in_window(T0 + 5 * NS, 60 * NS) == 1
    assert restored.marks == {"BTCUSDT": 50_100.0} and restored.mark_times == {"BTCUSDT": T0 + 2 * NS}


def test_the_dedup_windows_are_capped_to_the_newest_ids() -> None:
    led = RiskLedger(1_000.0)
    for i in range(30):
        led.apply_report(report("BTCUSDT", T0 + i * NS, intent_id=f"x-{i}"))
    cp = checkpoint.capture(led, {}, time_ns=T0, window_ids=10)
    assert len(cp.seen_reports) == 10 and cp.seen_reports[-1] == led._seen_reports.newest(1)[0]


def test_a_checkpoint_with_values_no_ledger_holds_is_refused() -> None:
    led = RiskLedger(1_000.0)
    cp = checkpoint.capture(led, {0: 4}, time_ns=T0)
    cp.peak_equity = math.nan
    with pytest.raises(checkpoint.InvalidCheckpointError):
        checkpoint.restore(RiskLedger(1_000.0), cp)
    cp = checkpoint.capture(led, {0: -1}, time_ns=T0)
    assert checkpoint.invalid(cp)

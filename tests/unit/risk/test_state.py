"""The ledger learns equity, PnL today, peak, streaks, orders and exposure from execution reports."""

from __future__ import annotations

from quantumedge.risk.domain.state import Pending, RiskLedger
from quantumedge.v1 import execution_pb2
from tests.support.risk_builders import BUY, NS, SELL, T0, report, round_trip


def test_realised_losses_move_equity_pnl_today_and_drawdown() -> None:
    led = RiskLedger(10_000.0)
    for r in round_trip("BTCUSDT", T0 + NS, pnl=-300.0):
        led.apply_report(r)
    assert led.equity == 9_700.0
    assert led.pnl_today == -300.0
    assert led.peak_equity == 10_000.0
    assert abs(led.drawdown - 0.03) < 1e-12


def test_marks_move_unrealised_pnl_and_the_peak() -> None:
    led = RiskLedger(10_000.0)
    led.apply_report(report("BTCUSDT", T0 + NS, position_qty=0.1, avg_price=50_000.0))
    led.apply_mark("BTCUSDT", 51_000.0, T0 + 2 * NS)
    assert led.equity == 10_100.0 and led.peak_equity == 10_100.0
    led.apply_mark("BTCUSDT", 49_000.0, T0 + 3 * NS)
    assert led.equity == 9_900.0 and led.pnl_today == -100.0
    assert abs(led.drawdown - 200.0 / 10_100.0) < 1e-12


def test_pnl_today_restarts_at_the_utc_day_rollover() -> None:
    led = RiskLedger(10_000.0)
    for r in round_trip("BTCUSDT", T0 + 23 * 3600 * NS, pnl=-400.0):
        led.apply_report(r)
    assert led.pnl_today == -400.0
    for r in round_trip("BTCUSDT", T0 + 25 * 3600 * NS, pnl=-50.0):
        led.apply_report(r)
    assert led.pnl_today == -50.0
    assert led.equity == 9_550.0


def test_loss_streak_counts_round_trips_not_partial_fills() -> None:
    led = RiskLedger(10_000.0)
    t = T0 + NS
    # One losing round trip closed by two partial fills counts once.
    led.apply_report(report("BTCUSDT", t, position_qty=0.02))
    led.apply_report(report("BTCUSDT", t + 1, position_qty=0.01, realized=-5.0))
    assert led.loss_streak == 0
    closed = led.apply_report(report("BTCUSDT", t + 2, position_qty=0.0, realized=-5.0))
    assert closed is not None and closed.pnl == -10.0
    assert led.loss_streak == 1 and led.last_loss_ns["BTCUSDT"] == t + 2 and led.last_exit_ns["BTCUSDT"] == t + 2
    for r in round_trip("ETHUSDT", t + 10, pnl=-1.0):
        led.apply_report(r)
    assert led.loss_streak == 2
    for r in round_trip("ETHUSDT", t + 20, pnl=+3.0):
        led.apply_report(r)
    assert led.loss_streak == 0


def test_entry_fee_belongs_to_the_round_trip() -> None:
    led = RiskLedger(10_000.0)
    led.apply_report(report("BTCUSDT", T0, position_qty=0.01, realized=-0.5, fee=0.5))
    closed = led.apply_report(report("BTCUSDT", T0 + 1, position_qty=0.0, realized=+0.3))
    assert closed is not None and abs(closed.pnl - (-0.2)) < 1e-12
    assert led.loss_streak == 1


def test_duplicate_reports_are_ignored() -> None:
    led = RiskLedger(10_000.0)
    r = report("BTCUSDT", T0, realized=-10.0)
    led.apply_report(r)
    led.apply_report(r)
    assert led.realized_total == -10.0 and led.reports_seen == 1


def test_venue_equity_re_anchors_without_counting_as_pnl() -> None:
    led = RiskLedger(10_000.0)
    led.apply_report(report("", T0, equity=25_000.0))
    assert led.equity == 25_000.0 and led.pnl_today == 0.0 and led.drawdown == 0.0
    led.apply_report(report("BTCUSDT", T0 + 1, realized=-100.0))
    assert led.equity == 24_900.0 and led.pnl_today == -100.0


def test_orders_in_window_count_each_intent_once() -> None:
    led = RiskLedger(10_000.0)
    for i in range(3):
        led.apply_report(report("BTCUSDT", T0 + i * NS, intent_id=f"intent-{i}", status=execution_pb2.ORDER_STATUS_NEW))
    # Another leg (TP/SL) of intent-0 is not another order decision.
    led.apply_report(report("BTCUSDT", T0 + 3 * NS, intent_id="intent-0", role=execution_pb2.ORDER_ROLE_TAKE_PROFIT))
    assert led.orders_in_window(T0 + 3 * NS, 60 * NS) == 3
    assert led.orders_in_window(T0 + 61 * NS + 1, 60 * NS) == 1


def test_pending_entries_count_as_exposure_until_execution_finishes_them() -> None:
    led = RiskLedger(10_000.0)
    led.add_pending(Pending("i1", "BTCUSDT", BUY, False, 0.01, 50_000.0, T0))
    assert led.symbol_exposure("BTCUSDT", T0, 30 * NS) == 500.0
    assert led.open_symbols(T0, 30 * NS) == {"BTCUSDT"}
    led.apply_report(
        report("BTCUSDT", T0 + 1, intent_id="i1", status=execution_pb2.ORDER_STATUS_PARTIALLY_FILLED, quantity=0.01)
    )
    led.apply_report(report("BTCUSDT", T0 + 2, position_qty=0.01, intent_id="i1", quantity=0.01))
    assert "i1" not in led.pending
    assert led.symbol_exposure("BTCUSDT", T0 + 2, 30 * NS) == 500.0
    # An entry nobody ever reports on stops counting after its time to live.
    led.add_pending(Pending("i2", "ETHUSDT", BUY, False, 1.0, 3_000.0, T0))
    assert led.gross_exposure(T0 + 31 * NS, 30 * NS) == 500.0


def test_replay_applies_the_operator_acknowledgement_where_it_happened() -> None:
    history = []
    for i in range(3):
        history += round_trip("BTCUSDT", T0 + i * NS, pnl=-10.0)
    history += round_trip("BTCUSDT", T0 + 10 * NS, pnl=-10.0)
    led = RiskLedger(10_000.0)
    led.replay(history, acknowledged_ns=T0 + 5 * NS)
    assert led.loss_streak == 1
    assert led.peak_equity == 9_970.0
    plain = RiskLedger(10_000.0)
    plain.replay(history)
    assert plain.loss_streak == 4 and plain.peak_equity == 10_000.0


def test_short_flip_closes_the_long_round_trip() -> None:
    led = RiskLedger(10_000.0)
    led.apply_report(report("BTCUSDT", T0, position_qty=0.01))
    closed = led.apply_report(report("BTCUSDT", T0 + 1, position_qty=-0.01, realized=-4.0, side=SELL))
    assert closed is not None and closed.pnl == -4.0
    assert led.position("BTCUSDT") == -0.01


def test_observed_reports_release_the_intent_but_are_never_a_position_or_pnl() -> None:
    from quantumedge.execution.observe import Touch, observed_report
    from tests.support.execution_builders import decision

    led = RiskLedger(10_000.0)
    led.add_pending(Pending("obs-1", "BTCUSDT", BUY, False, 0.01, 50_000.0, T0))
    before = (led.equity, led.realized_total, led.fees_total)
    observed = observed_report(decision("obs-1", qty=0.01), Touch(49_999.0, 50_001.0, T0), 10.0, T0 + 1)
    assert observed.HasField("hypothetical_fill")
    led.apply_report(observed)
    assert "obs-1" not in led.pending and led.position("BTCUSDT") == 0
    assert (led.equity, led.realized_total, led.fees_total) == before
    assert led.observed_reports == 1 and led.observed_notional == 50_001.0 * 0.01
    assert led.reports_seen == 1  # execution is alive: risk does not fail closed on observe-only

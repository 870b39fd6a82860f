"""The engine: fail closed, halts that still let risk be reduced, idempotent decisions, manual review."""

from __future__ import annotations

import pytest

from quantumedge.risk.domain import policy
from quantumedge.risk.domain.engine import InvalidIntentError, RiskEngine, StillBreachedError
from quantumedge.risk.domain.reasons import primary_code, reason_code
from quantumedge.v1 import risk_pb2
from tests.support.risk_builders import (
    BUY,
    NS,
    SELL,
    FakeClock,
    book,
    quiet_settings,
    report,
    round_trip,
    signal,
    snapshot,
)


def ready_engine(clock: FakeClock, **overrides: object) -> RiskEngine:
    """Fresh market data and a known (flat) execution state."""
    engine = RiskEngine(quiet_settings(**overrides))
    engine.on_report(snapshot(clock.now), clock.now)
    engine.on_market(book("BTCUSDT", 49_999.0, 50_001.0, clock.now), clock.now)
    engine.on_market(book("ETHUSDT", 2_999.9, 3_000.1, clock.now), clock.now)
    return engine


def hold(engine: RiskEngine, clock: FakeClock, symbol: str = "BTCUSDT", qty: float = 0.01) -> None:
    engine.on_report(report(symbol, clock.now, position_qty=qty, intent_id="held", quantity=qty), clock.now)


def past_min_hold(engine: RiskEngine, clock: FakeClock) -> None:
    """Let held positions age past min_hold_ns (signals may close them from then on), with fresh quotes."""
    clock.advance(engine.settings.min_hold_ns / NS)
    engine.on_market(book("BTCUSDT", 49_999.0, 50_001.0, clock.now), clock.now)
    engine.on_market(book("ETHUSDT", 2_999.9, 3_000.1, clock.now), clock.now)


def codes(reasons) -> list[str]:
    """The reason code of each reason (risk/domain/reasons.py)."""
    return [reason_code(r) for r in reasons]


def test_nothing_is_approved_before_any_execution_state() -> None:
    clock = FakeClock()
    engine = RiskEngine(quiet_settings())
    engine.on_market(book("BTCUSDT", 49_999.0, 50_001.0, clock.now), clock.now)
    decision = engine.decide(signal(t_ns=clock.now), clock.now)
    assert not decision.approved
    assert primary_code(decision) == "no_execution_state"


def test_nothing_is_approved_without_market_data() -> None:
    clock = FakeClock()
    engine = RiskEngine(quiet_settings())
    engine.on_report(snapshot(clock.now), clock.now)
    decision = engine.decide(signal(t_ns=clock.now), clock.now)
    assert not decision.approved
    assert codes(decision.reasons) == ["stale_market_data"]
    assert engine.market.data_age_ns("BTCUSDT", clock.now) is None  # never any data, not old data


def test_stale_market_data_approves_nothing_not_even_exits() -> None:
    clock = FakeClock()
    engine = ready_engine(clock, min_hold_ns=0)  # the minimum hold is not what this test is about
    hold(engine, clock)
    clock.advance(6)  # max_data_age is 5 s
    exit_signal = engine.decide(signal(p_up=0.2, t_ns=clock.now), clock.now)
    assert not exit_signal.approved
    assert codes(exit_signal.reasons) == ["stale_market_data"]
    assert engine.market.data_age_ns("BTCUSDT", clock.now) == 6 * NS
    # A gap marker wipes trust in the symbol until fresh data arrives.
    engine.on_market(book("BTCUSDT", 49_999.0, 50_001.0, clock.now), clock.now)
    assert engine.decide(signal(p_up=0.2, t_ns=clock.now), clock.now).approved


def test_gap_marker_makes_the_symbol_stale() -> None:
    clock = FakeClock()
    engine = ready_engine(clock)
    gap = book("BTCUSDT", 1, 2, clock.now)
    gap.gap.stream = "book"
    gap.gap.reason = "reconnect"
    engine.on_market(gap, clock.now)
    decision = engine.decide(signal(t_ns=clock.now), clock.now)
    assert "stale_market_data" in codes(decision.reasons)
    assert engine.market.data_age_ns("BTCUSDT", clock.now) is None  # the gap wiped the symbol's marks


def test_old_signals_are_rejected() -> None:
    clock = FakeClock()
    engine = ready_engine(clock)
    decision = engine.decide(signal(t_ns=clock.now - 11 * NS), clock.now)
    assert not decision.approved and primary_code(decision) == "stale_signal"


def test_silent_execution_fails_closed_when_heartbeats_are_required() -> None:
    clock = FakeClock()
    engine = ready_engine(clock, max_execution_silence_ns=30 * NS)
    clock.advance(31)
    engine.on_market(book("BTCUSDT", 49_999.0, 50_001.0, clock.now), clock.now)
    decision = engine.decide(signal(t_ns=clock.now), clock.now)
    assert primary_code(decision) == "stale_execution_state"


def test_approved_entry_is_sized_protected_and_idempotent() -> None:
    clock = FakeClock()
    engine = ready_engine(clock)
    settings, limits = engine.settings, engine.limits
    # Every horizon expects +20 bps; the 1-minute one (60 rows of 1 s at 100 bps each) is chosen (ties: shorter).
    sig = signal(t_ns=clock.now, signal_id="sig-42", volatility_bps=100.0, row_interval_s=1.0)
    first = engine.decide(sig, clock.now)
    assert first.approved
    intent = first.intent
    assert intent.kind == risk_pb2.INTENT_KIND_ENTRY and intent.side == BUY
    # A quarter Kelly (expected return over the horizon's variance) of 10 000, under the risk_fraction cap,
    # at the ask it will pay (50 001), on the 0.00001 step: never over budget after the fill.
    fraction = settings.kelly_fraction * (20e-4 / ((100e-4) ** 2 * 60))
    assert fraction < limits.risk_fraction
    budget = 10_000.0 * fraction
    assert intent.quantity == policy.floor_to_step(budget / 50_001.0, 0.00001) == 0.01666
    assert intent.reference_price == 50_001.0 and intent.quantity * 50_001.0 <= budget
    assert "sized by edge_volatility on h1" in first.reasons[-1] and codes(first.reasons) == ["approved"]
    # The plan the label scored: take-profit and stop from the limits, the chosen horizon as time stop.
    assert intent.take_profit_price == round(50_001.0 * (1 + limits.take_profit_bps / 1e4), 2) == 50_401.01
    assert intent.stop_loss_price == round(50_001.0 * (1 - limits.stop_loss_bps / 1e4), 2) == 49_801.0
    assert intent.time_stop_ns == 60 * NS
    # Redelivered: the same decision, the same intent id, and no double counting.
    again = engine.decide(sig, clock.now + 1)
    assert again == first
    assert engine.counters.signals_seen == 1 and engine.counters.approved == 1


def test_limit_entries_sit_at_the_touch() -> None:
    clock = FakeClock()
    engine = ready_engine(clock, entry_order_type="limit", entry_time_in_force="IOC")
    intent = engine.decide(signal(t_ns=clock.now), clock.now).intent
    assert intent.order_type == risk_pb2.ORDER_TYPE_LIMIT and intent.limit_price == 50_001.0
    assert intent.time_in_force == risk_pb2.TIME_IN_FORCE_IOC


def test_exit_intent_closes_the_whole_position_once() -> None:
    clock = FakeClock()
    engine = ready_engine(clock)
    hold(engine, clock, qty=0.0123)
    early = engine.decide(signal(p_up=0.3, t_ns=clock.now), clock.now)
    assert not early.approved and codes(early.reasons) == ["already_positioned"]  # inside the minimum hold
    past_min_hold(engine, clock)
    exit1 = engine.decide(signal(p_up=0.3, t_ns=clock.now), clock.now)
    assert exit1.approved and exit1.intent.kind == risk_pb2.INTENT_KIND_EXIT
    assert exit1.intent.side == SELL and exit1.intent.quantity == 0.0123
    exit2 = engine.decide(signal(p_up=0.3, t_ns=clock.now), clock.now)
    assert not exit2.approved and codes(exit2.reasons) == ["exit_pending"]


def test_halt_refuses_entries_but_allows_exits() -> None:
    clock = FakeClock()
    engine = ready_engine(clock)
    engine.halt_now("maintenance", cancel_open_orders=True, flatten=False, now_ns=clock.now)
    entry = engine.decide(signal(symbol="ETHUSDT", t_ns=clock.now), clock.now)
    assert not entry.approved and primary_code(entry) == "halted" and engine.halt_reason == "maintenance"
    hold(engine, clock)
    past_min_hold(engine, clock)
    exit_ = engine.decide(signal(p_up=0.3, t_ns=clock.now), clock.now)
    assert exit_.approved and codes(exit_.reasons)[-1] == "approved" and engine.halted
    engine.resume(clock.now)
    assert engine.decide(signal(symbol="ETHUSDT", t_ns=clock.now), clock.now).approved


def test_resume_is_refused_while_the_daily_loss_still_holds() -> None:
    clock = FakeClock()
    engine = ready_engine(clock, daily_loss_limit=100.0)
    for r in round_trip("BTCUSDT", clock.now, pnl=-150.0):
        breach = engine.on_report(r, clock.now)
    assert breach is not None and breach.limit == "daily_loss_limit" and engine.halted
    assert engine.halt.value == 150.0 and engine.halt.threshold == 100.0
    with pytest.raises(StillBreachedError, match="UTC day rollover") as still:  # the hint is for the operator
        engine.resume(clock.now)
    assert still.value.breach.limit == "daily_loss_limit"
    assert engine.halted
    new_limits = risk_pb2.RiskLimits()
    new_limits.CopyFrom(engine.limits)
    new_limits.daily_loss_limit = 200.0
    engine.set_limits(new_limits)
    assert not engine.resume(clock.now).halted


def test_resume_acknowledges_the_loss_streak() -> None:
    clock = FakeClock()
    engine = ready_engine(clock, max_loss_streak=2)
    for i in range(2):
        for r in round_trip("BTCUSDT", clock.now + i * 10, pnl=-1.0):
            engine.on_report(r, clock.now)
    assert engine.halted and engine.halt.limit == "max_loss_streak"
    state = engine.resume(clock.now)
    assert not state.halted and state.acknowledged_ns == clock.now
    assert engine.ledger.loss_streak == 0
    assert engine.decide(signal(t_ns=clock.now), clock.now).approved


def test_manual_review_applies_limits_without_sizing() -> None:
    clock = FakeClock()
    engine = ready_engine(clock)
    ok = risk_pb2.OrderIntent(intent_id="manual-1", symbol="BTCUSDT", side=BUY, quantity=0.002)
    decision = engine.review(ok, clock.now)
    assert decision.approved and decision.intent.quantity == 0.002
    assert decision.intent.kind == risk_pb2.INTENT_KIND_ENTRY and decision.intent.reference_price == 50_000.0
    big = risk_pb2.OrderIntent(intent_id="manual-2", symbol="BTCUSDT", side=BUY, quantity=1.0)
    refused = engine.review(big, clock.now)
    assert not refused.approved
    assert {"max_order_notional", "max_symbol_notional"} <= set(codes(refused.reasons))
    assert refused.intent.quantity == 0.0 and engine.limits.max_order_notional == 1_000.0 < 1.0 * 50_000.0


def test_manual_exit_is_allowed_while_halted_but_not_beyond_the_position() -> None:
    clock = FakeClock()
    engine = ready_engine(clock)
    hold(engine, clock, qty=0.01)
    engine.halt_now("stop", False, False, clock.now)
    exit_ = engine.review(risk_pb2.OrderIntent(intent_id="m-1", symbol="BTCUSDT", side=SELL, quantity=0.01), clock.now)
    assert exit_.approved and exit_.intent.kind == risk_pb2.INTENT_KIND_EXIT
    too_much = risk_pb2.OrderIntent(
        intent_id="m-2", symbol="BTCUSDT", side=SELL, quantity=0.02, kind=risk_pb2.INTENT_KIND_EXIT
    )
    assert primary_code(engine.review(too_much, clock.now)) == "exit_exceeds_position"
    entry = engine.review(risk_pb2.OrderIntent(intent_id="m-3", symbol="ETHUSDT", side=BUY, quantity=0.01), clock.now)
    assert not entry.approved and codes(entry.reasons) == ["halted"] and engine.halt_reason == "stop"


@pytest.mark.parametrize(
    ("intent", "field"),
    [
        (risk_pb2.OrderIntent(symbol="BTCUSDT", side=BUY, quantity=1.0), "intent.intent_id"),
        (risk_pb2.OrderIntent(intent_id="x", side=BUY, quantity=1.0), "intent.symbol"),
        (risk_pb2.OrderIntent(intent_id="x", symbol="BTCUSDT", quantity=1.0), "intent.side"),
        (risk_pb2.OrderIntent(intent_id="x", symbol="BTCUSDT", side=BUY, quantity=-1.0), "intent.quantity"),
        (
            risk_pb2.OrderIntent(
                intent_id="x", symbol="BTCUSDT", side=BUY, quantity=1.0, order_type=risk_pb2.ORDER_TYPE_LIMIT
            ),
            "intent.limit_price",
        ),
    ],
)
def test_manual_review_refuses_nonsense(intent: risk_pb2.OrderIntent, field: str) -> None:
    clock = FakeClock()
    with pytest.raises(InvalidIntentError, match=field):
        ready_engine(clock).review(intent, clock.now)


def test_status_lists_every_limit_with_headroom() -> None:
    clock = FakeClock()
    engine = ready_engine(clock, daily_loss_limit=400.0)
    for r in round_trip("BTCUSDT", clock.now, pnl=-100.0):
        engine.on_report(r, clock.now)
    status = engine.status(clock.now, ["BTCUSDT", "ETHUSDT"])
    by_name = {s.name: s for s in status.limits}
    assert {
        "daily_loss_limit",
        "max_drawdown_fraction",
        "max_gross_exposure",
        "max_symbol_notional",
        "max_open_positions",
        "max_loss_streak",
        "max_orders_per_window",
        "cooldown_after_loss_ns",
        "cooldown_after_exit_ns",
        "max_data_age_ns",
        "max_spread_bps",
        "min_depth_notional",
        "execution_state_seen",
    } <= set(by_name)
    daily = by_name["daily_loss_limit"]
    assert (daily.value, daily.threshold, daily.headroom, daily.breached) == (100.0, 400.0, 300.0, False)
    assert status.pnl_today == -100.0 and status.equity == 9_900.0 and not status.halted


def test_a_burst_of_signals_does_not_stack_entries_before_the_first_fill() -> None:
    clock = FakeClock()
    engine = ready_engine(clock)
    first = engine.decide(signal(t_ns=clock.now), clock.now)
    second = engine.decide(signal(t_ns=clock.now), clock.now)
    assert first.approved and not second.approved
    assert codes(second.reasons) == ["entry_pending"]
    # Once execution reports the fill, it is a position, and the same rule holds through it.
    engine.on_report(
        report("BTCUSDT", clock.now, position_qty=0.01, intent_id=first.intent.intent_id, quantity=0.01), clock.now
    )
    assert codes(engine.decide(signal(t_ns=clock.now), clock.now).reasons) == ["already_positioned"]


def test_decision_index_is_bounded() -> None:
    clock = FakeClock()
    engine = RiskEngine(quiet_settings(decision_index_size=3))
    decisions = [engine.decide(signal(t_ns=clock.now), clock.now) for _ in range(5)]
    assert len(engine.decisions) == 3
    assert engine.decisions.get(decisions[0].decision_id) is None
    assert engine.decisions.get(decisions[-1].decision_id) == decisions[-1]

"""Soft conditions move a scope to REDUCING by themselves, each with its reason code, and lift when they clear:
a stale model, a soft loss before the hard daily limit, a failing venue (an execution alert or repeated
rejections). The engine is driven as the service drives it (pure: time is the caller's)."""

from __future__ import annotations

from quantumedge.risk.domain.reasons import reason_code
from quantumedge.risk.domain.trading_state import ACCOUNT, MODEL_STALE, SOFT_LOSS, VENUE_FAILING, TradingState
from quantumedge.v1 import execution_pb2, risk_pb2
from tests.support.risk_builders import SELL, FakeClock, book, report, round_trip, signal
from tests.unit.risk.test_engine import hold, ready_engine


def _codes(engine, scope: str) -> set[str]:
    return set(engine.trading.scope(scope).causes)


def test_a_stale_model_reduces_the_symbol_while_market_data_flows_and_a_fresh_signal_lifts_it() -> None:
    clock = FakeClock()
    engine = ready_engine(clock, model_stale_after_ns=60_000_000_000)
    assert engine.decide(signal("BTCUSDT", t_ns=clock.now), clock.now).approved
    clock.advance(61)
    engine.on_market(book("BTCUSDT", 49_999.0, 50_001.0, clock.now), clock.now)
    engine.on_market(book("ETHUSDT", 2_999.9, 3_000.1, clock.now), clock.now)
    st = engine.trading.scope("BTCUSDT")
    assert st.state is TradingState.REDUCING and st.reason_code == MODEL_STALE
    # ETHUSDT never had a signal: counted from its first market event, it is stale too.
    assert _codes(engine, "ETHUSDT") == {MODEL_STALE}
    assert engine.trading.changed() == ["BTCUSDT", "ETHUSDT"]
    manual = engine.review(risk_pb2.OrderIntent(intent_id="m", symbol="BTCUSDT", side=SELL, quantity=0.001), clock.now)
    assert not manual.approved and reason_code(manual.reasons[0]) == "exits_only"
    fresh = engine.decide(signal("BTCUSDT", t_ns=clock.now), clock.now)
    assert engine.trading.scope("BTCUSDT").state is TradingState.ACTIVE and "BTCUSDT" in engine.trading.changed()
    assert not any(reason_code(r) == "exits_only" for r in fresh.reasons)


def test_a_soft_loss_reduces_the_account_before_the_hard_limit_and_lifts_when_the_loss_shrinks() -> None:
    clock = FakeClock()
    engine = ready_engine(clock, daily_loss_limit=100.0, soft_daily_loss_fraction=0.5, min_hold_ns=0)
    for r in round_trip("BTCUSDT", clock.now, pnl=-60.0):
        engine.on_report(r, clock.now)
    assert not engine.halted  # the hard limit (100) is not reached
    st = engine.trading.scope(ACCOUNT)
    assert st.state is TradingState.REDUCING and st.reason_code == SOFT_LOSS
    assert engine.status(clock.now, []).account_state.state == risk_pb2.TRADING_STATE_REDUCING
    entry = engine.decide(signal("ETHUSDT", t_ns=clock.now), clock.now)
    assert not entry.approved and reason_code(entry.reasons[0]) == "exits_only"
    hold(engine, clock, "BTCUSDT", 0.01)  # an exit still goes through
    exit_ = engine.decide(signal("BTCUSDT", p_up=0.2, t_ns=clock.now), clock.now)
    assert exit_.approved and exit_.intent.kind == risk_pb2.INTENT_KIND_EXIT
    for r in round_trip("ETHUSDT", clock.now + 10, pnl=30.0, price=3_000.0):
        engine.on_report(r, clock.now)
    assert engine.trading.scope(ACCOUNT).state is TradingState.ACTIVE  # loss 30 < 50


def test_the_soft_loss_fraction_is_a_bounded_limit() -> None:
    import pytest

    from quantumedge.risk.domain.limit_config import InvalidLimitsError, validate_limits

    clock = FakeClock()
    engine = ready_engine(clock)
    bad = risk_pb2.RiskLimits()
    bad.CopyFrom(engine.limits)
    bad.soft_daily_loss_fraction = 1.0
    with pytest.raises(InvalidLimitsError, match="soft_daily_loss_fraction"):
        validate_limits(bad)


def _rejected(symbol: str, t_ns: int, code: str) -> execution_pb2.ExecutionReport:
    r = report(symbol, t_ns, intent_id=f"rej-{code}", status=execution_pb2.ORDER_STATUS_REJECTED, quantity=0.01)
    r.order.reject_code, r.order.reject_message = code, "from the venue"
    return r


def test_a_failing_venue_reduces_the_symbol_on_an_alert_or_repeated_rejections_and_a_fill_lifts_it() -> None:
    clock = FakeClock()
    engine = ready_engine(clock, venue_reject_streak=3)
    alert = report("BTCUSDT", clock.now, intent_id="lost", status=execution_pb2.ORDER_STATUS_PENDING, quantity=0.01)
    alert.alert, alert.note = "OUTCOME_UNKNOWN", "outcome unknown for 60s"
    engine.on_report(alert, clock.now)
    assert _codes(engine, "BTCUSDT") == {VENUE_FAILING}

    engine.on_report(_rejected("ETHUSDT", clock.now, "REDUCING"), clock.now)  # execution's own refusal
    for _ in range(2):
        engine.on_report(_rejected("ETHUSDT", clock.now, "-2010"), clock.now)
    assert _codes(engine, "ETHUSDT") == set()  # two venue rejections: not yet a streak of three
    engine.on_report(_rejected("ETHUSDT", clock.now, "-1013"), clock.now)
    st = engine.trading.scope("ETHUSDT")
    assert st.reason_code == VENUE_FAILING and "3 venue rejections" in st.causes[VENUE_FAILING].detail
    entry = engine.decide(signal("ETHUSDT", t_ns=clock.now), clock.now)
    assert not entry.approved and reason_code(entry.reasons[0]) == "exits_only"

    filled = report("ETHUSDT", clock.now, intent_id="ok", quantity=0.01, position_qty=0.01, avg_price=3_000.0)
    filled.fill.quantity, filled.fill.price = 0.01, 3_000.0
    engine.on_report(filled, clock.now)
    assert engine.trading.scope("ETHUSDT").state is TradingState.ACTIVE

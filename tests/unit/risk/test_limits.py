"""One test per limit and guard on the pure engine: real ExecutionReport messages (or market events for the
market guards) drive it over its threshold at an injected now_ns; decisions are checked by reason code and
halts by their HaltState (limit, value, threshold). The service's publishing of a halt is in
test_service_limits.py."""

from __future__ import annotations

import pytest

from quantumedge.risk.domain.engine import RiskEngine
from quantumedge.risk.domain.reasons import decision_codes, primary_code
from quantumedge.v1 import execution_pb2, risk_pb2
from tests.support.risk_builders import (
    BUY,
    NS,
    FakeClock,
    book,
    depth,
    quiet_settings,
    report,
    round_trip,
    signal,
    snapshot,
)
from tests.support.risk_cases import HALTING_CASES, Case, two_positions

PRICES = {"BTCUSDT": 50_000.0, "ETHUSDT": 3_000.0, "SOLUSDT": 150.0}


def market(engine: RiskEngine, clock: FakeClock, symbols=tuple(PRICES), spread_bps: float = 0.4) -> None:
    """A fresh top of book for each symbol, stamped now (as ingest publishes it)."""
    clock.advance(1e-9)
    for sym in symbols:
        half = PRICES[sym] * spread_bps / 20_000
        engine.on_market(book(sym, PRICES[sym] - half, PRICES[sym] + half, clock.now), clock.now)


def ready(clock: FakeClock, **overrides: object) -> RiskEngine:
    engine = RiskEngine(quiet_settings(**overrides))
    engine.on_report(snapshot(clock.now), clock.now)
    market(engine, clock)
    return engine


def feed(engine: RiskEngine, clock: FakeClock, reports: list[execution_pb2.ExecutionReport]) -> list:
    """Every breach an execution report halted trading with."""
    return [b for r in reports if (b := engine.on_report(r, clock.now)) is not None]


def decide(engine: RiskEngine, clock: FakeClock, symbol: str, **kw: object) -> risk_pb2.RiskDecision:
    return engine.decide(signal(symbol, t_ns=clock.now, **kw), clock.now)


def limit_status(engine: RiskEngine, clock: FakeClock, name: str) -> risk_pb2.LimitStatus:
    return {s.name: s for s in engine.status(clock.now, list(PRICES)).limits}[name]


@pytest.mark.parametrize("case", HALTING_CASES, ids=lambda c: c.limit)
def test_limit_breached_by_execution_reports_refuses_intents_and_halts(case: Case) -> None:
    # Every state limit can be made a halting one; the first three halt by default.
    clock = FakeClock()
    engine = ready(clock, halt_on=[case.limit], **case.overrides)
    before = decide(engine, clock, "SOLUSDT")
    assert before.approved, before.reasons
    # The venue refuses that order, so nothing of it stays pending.
    rejected = execution_pb2.ORDER_STATUS_REJECTED
    intent = before.intent
    feed(
        engine,
        clock,
        [report("SOLUSDT", clock.now, intent_id=intent.intent_id, status=rejected, quantity=intent.quantity)],
    )
    breaches = feed(engine, clock, case.drive(clock.now))

    assert [b.limit for b in breaches] == [case.limit]  # halts once, on the report that crossed it
    halt = engine.halt
    assert halt.halted and halt.limit == case.limit
    assert halt.value == pytest.approx(case.value) and halt.threshold == pytest.approx(case.threshold)
    assert halt.cancel_open_orders  # automatic halts cancel resting entries by default
    status = engine.status(clock.now, list(PRICES))
    assert status.halted and status.account_state.reason_code == case.limit
    assert limit_status(engine, clock, case.limit).breached

    after = decide(engine, clock, "SOLUSDT")
    assert not after.approved and primary_code(after) == "halted"


@pytest.mark.parametrize("limit", ["daily_loss_limit", "max_drawdown_fraction", "max_loss_streak"])
def test_hard_limits_halt_by_default(limit: str) -> None:
    case = next(c for c in HALTING_CASES if c.limit == limit)
    clock = FakeClock()
    engine = ready(clock, **case.overrides)
    assert [b.limit for b in feed(engine, clock, case.drive(clock.now))] == [limit]
    assert engine.halt.halted and engine.halt.limit == limit


def test_soft_limit_refuses_entries_without_halting() -> None:
    clock = FakeClock()
    engine = ready(clock, max_gross_exposure=600.0)
    assert feed(engine, clock, two_positions(clock.now)) == []
    decision = decide(engine, clock, "SOLUSDT")
    assert not decision.approved and primary_code(decision) == "max_gross_exposure"
    gross = limit_status(engine, clock, "max_gross_exposure")
    assert gross.breached and gross.value == pytest.approx(650.0) and gross.threshold == pytest.approx(600.0)
    assert not engine.halted


def test_max_symbol_notional_caps_then_refuses() -> None:
    clock = FakeClock()
    engine = ready(clock, max_symbol_notional=520.0, allow_pyramiding=True)
    feed(engine, clock, [report("BTCUSDT", clock.now, position_qty=0.01, intent_id="e", quantity=0.01)])
    capped = decide(engine, clock, "BTCUSDT")
    assert capped.approved and capped.intent.quantity == 0.00039  # only 20 of room left, bought at the ask
    # The sizing cap that bound is named in the approval (no separate field carries it).
    assert "sized by max_symbol_notional" in capped.reasons[0]
    held = report("BTCUSDT", clock.now, position_qty=0.0105, intent_id=capped.intent.intent_id, quantity=0.0004)
    feed(engine, clock, [held])
    refused = decide(engine, clock, "BTCUSDT")
    assert not refused.approved and primary_code(refused) == "max_symbol_notional"


def test_open_positions_limit_refuses_a_new_symbol() -> None:
    clock = FakeClock()
    engine = ready(clock, max_open_positions=1)
    feed(
        engine,
        clock,
        [report("ETHUSDT", clock.now, position_qty=0.05, avg_price=3_000.0, intent_id="e", quantity=0.05)],
    )
    decision = decide(engine, clock, "BTCUSDT")
    assert not decision.approved and "max_open_positions" in decision_codes(decision)


def test_cooldown_after_loss_is_per_symbol_and_expires() -> None:
    clock = FakeClock()
    engine = ready(clock, cooldown_after_loss_ns=30 * NS)
    feed(engine, clock, round_trip("BTCUSDT", clock.now, pnl=-5.0))
    assert primary_code(decide(engine, clock, "BTCUSDT")) == "cooldown_after_loss"
    assert decide(engine, clock, "ETHUSDT").approved
    clock.advance(31)
    market(engine, clock, ["BTCUSDT"])
    assert decide(engine, clock, "BTCUSDT").approved


def test_cooldown_after_exit() -> None:
    clock = FakeClock()
    engine = ready(clock, cooldown_after_exit_ns=10 * NS)
    feed(engine, clock, round_trip("BTCUSDT", clock.now, pnl=+5.0))
    assert primary_code(decide(engine, clock, "BTCUSDT")) == "cooldown_after_exit"
    clock.advance(11)
    market(engine, clock, ["BTCUSDT"])
    assert decide(engine, clock, "BTCUSDT").approved


def test_stale_market_data_guard_refuses_entries_and_exits() -> None:
    clock = FakeClock()
    engine = ready(clock)
    feed(engine, clock, [report("BTCUSDT", clock.now, position_qty=0.01, intent_id="h", quantity=0.01)])
    clock.advance(6)
    for decision in (decide(engine, clock, "ETHUSDT"), decide(engine, clock, "BTCUSDT", p_up=0.1)):
        assert not decision.approved and primary_code(decision) == "stale_market_data"


def test_spread_guard() -> None:
    clock = FakeClock()
    engine = ready(clock, max_spread_bps=10.0)
    market(engine, clock, ["BTCUSDT"], spread_bps=25.0)
    decision = decide(engine, clock, "BTCUSDT")
    assert not decision.approved and primary_code(decision) == "max_spread_bps"
    spread = limit_status(engine, clock, "max_spread_bps")
    assert spread.breached and spread.value == pytest.approx(25.0) and spread.threshold == 10.0


def test_depth_guard_needs_fresh_depth_deep_enough() -> None:
    clock = FakeClock()
    engine = ready(clock, min_depth_notional=10_000.0)
    assert "min_depth_notional" in decision_codes(decide(engine, clock, "BTCUSDT"))  # no depth yet
    engine.on_market(depth("BTCUSDT", 50_000.0, 0.01, clock.now), clock.now)  # 5 levels x 500 = 2 500 per side
    assert "min_depth_notional" in decision_codes(decide(engine, clock, "BTCUSDT"))
    thin = engine.market.depth_notional("BTCUSDT", BUY, engine.settings.depth_band_bps)
    assert thin == pytest.approx(2500.75)
    engine.on_market(depth("BTCUSDT", 50_000.0, 1.0, clock.now), clock.now)
    assert decide(engine, clock, "BTCUSDT").approved

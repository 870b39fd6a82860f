"""Decision policy: entry vs exit, thresholds per horizon, regimes, sizing, venue filters, protection."""

from __future__ import annotations

import pytest

from quantumedge.risk.domain import policy
from quantumedge.risk.domain.limit_config import default_limits
from quantumedge.risk.settings import HorizonRule, RiskSettings, SymbolFilter
from quantumedge.v1 import common_pb2, risk_pb2
from tests.support.risk_builders import BUY, NS, SELL, signal

ENTRY, EXIT, NOTHING = risk_pb2.INTENT_KIND_ENTRY, risk_pb2.INTENT_KIND_EXIT, risk_pb2.INTENT_KIND_UNSPECIFIED


def codes(reasons) -> list[str]:
    """The machine-readable part of each reason (the text before the first ':')."""
    return [r.split(":")[0] for r in reasons]


def test_intent_id_is_deterministic_per_signal() -> None:
    assert policy.intent_id_for("sig-1") == policy.intent_id_for("sig-1")
    assert policy.intent_id_for("sig-1") != policy.intent_id_for("sig-2")
    assert policy.decision_id_for("signal", "sig-1") != policy.intent_id_for("sig-1")


def test_flat_and_confident_signal_is_an_entry() -> None:
    settings = RiskSettings()
    action = policy.classify(signal(p_up=0.7), 0.0, default_limits(settings), settings)
    assert (action.kind, action.side, action.reasons) == (ENTRY, BUY, [])


def test_min_confidence_and_min_edge_refuse_a_weak_entry() -> None:
    settings = RiskSettings()
    limits = default_limits(settings)
    limits.min_confidence, limits.min_edge = 0.6, 0.3
    action = policy.classify(signal(p_up=0.55), 0.0, limits, settings)
    assert action.kind == ENTRY
    assert {"min_confidence", "min_edge"} <= set(codes(action.reasons))


def test_per_horizon_rules_apply_to_each_horizon() -> None:
    settings = RiskSettings(horizon_rules={30: HorizonRule(min_confidence=0.6, min_edge=0.2)})
    sig = signal(p_up=0.7)
    del sig.predictions[:]
    sig.predictions.add(horizon=1, p_up=0.7, expected_return_bps=20.0)
    sig.predictions.add(horizon=30, p_up=0.55, expected_return_bps=5.0)  # the long horizon is lukewarm
    reasons = policy.classify(sig, 0.0, default_limits(settings), settings).reasons
    assert codes(reasons) == ["horizon_min_confidence", "horizon_min_edge"]
    assert all(" h30 " in r for r in reasons)
    # A listed horizon missing from the signal refuses the entry, even when another horizon is strong.
    settings = RiskSettings(horizon_rules={5: HorizonRule()})
    reasons = policy.classify(sig, 0.0, default_limits(settings), settings).reasons
    assert codes(reasons) == ["horizon_missing"] and " h5 " in reasons[0]


def test_regime_policy_decides_which_side_may_open() -> None:
    # The default lets every tagged regime open either side; an operator may restrict it.
    settings = RiskSettings(regime_sides={"REGIME_HIGH_VOL_TREND_UP": ["BUY"], "REGIME_HIGH_VOL_TREND_DOWN": ["SELL"]})
    limits = default_limits(settings)
    up = policy.classify(signal(p_up=0.7, regime=common_pb2.REGIME_HIGH_VOL_TREND_UP), 0.0, limits, settings)
    assert (up.kind, up.side, up.reasons) == (ENTRY, BUY, [])
    down = policy.classify(signal(p_up=0.7, regime=common_pb2.REGIME_HIGH_VOL_TREND_DOWN), 0.0, limits, settings)
    assert down.side == BUY and codes(down.reasons) == ["regime"]
    against = signal(p_up=0.7, regime=common_pb2.REGIME_HIGH_VOL_TREND_UP)
    assert codes(policy.entry_policy_reasons(against, SELL, limits, settings)) == ["regime"]
    wild = policy.classify(signal(p_up=0.7, regime=common_pb2.REGIME_HIGH_VOL_RANGE), 0.0, limits, settings)
    assert codes(wild.reasons) == ["regime"]  # a regime not listed opens nothing
    # Even by default an untagged signal opens nothing.
    defaults = RiskSettings()
    untagged = policy.classify(signal(p_up=0.7, regime=common_pb2.REGIME_UNSPECIFIED), 0.0, limits, defaults)
    assert codes(untagged.reasons) == ["regime"]
    assert (
        policy.classify(signal(p_up=0.7, regime=common_pb2.REGIME_HIGH_VOL_RANGE), 0.0, limits, defaults).reasons == []
    )


def test_spot_sell_signal_without_position_opens_nothing() -> None:
    # Signals price longs only: a bearish one, flat, is a long that fails its expected return, never a short
    # (not even with shorts allowed; those are manual orders).
    for settings in (RiskSettings(), RiskSettings(allow_short=True)):
        action = policy.classify(signal(p_up=0.2), 0.0, default_limits(settings), settings)
        assert (action.kind, action.side) == (ENTRY, BUY)
        assert codes(action.reasons) == ["min_expected_return"]


def test_long_position_exits_on_a_clear_reversal_after_the_minimum_hold() -> None:
    settings = RiskSettings()
    limits = default_limits(settings)
    opened = 1_000 * NS
    held = policy.Holding(opened_ns=opened)
    after = opened + settings.min_hold_ns
    reversed_ = signal(expected_return_bps=-(settings.exit_hysteresis_bps + 1))
    flip = policy.classify(reversed_, 0.02, limits, settings, held, after)
    assert (flip.kind, flip.side) == (EXIT, SELL)
    assert codes(flip.reasons) == ["exit"] and "signal_reversed" in flip.reasons[0]
    # The same reversal before the minimum hold leaves the position to its protection.
    early = policy.classify(reversed_, 0.02, limits, settings, held, after - 1)
    assert early.kind == NOTHING and codes(early.reasons) == ["already_positioned"]
    # A flip of sign inside the hysteresis band never exits.
    mild = signal(expected_return_bps=-(settings.exit_hysteresis_bps - 1))
    assert policy.classify(mild, 0.02, limits, settings, held, after).kind == NOTHING
    # The band is configurable: with none, any negative expectation exits.
    eager = RiskSettings(exit_hysteresis_bps=0.0)
    assert policy.classify(mild, 0.02, limits, eager, held, after).kind == EXIT


def test_same_side_signal_while_positioned_does_not_pyramid() -> None:
    settings = RiskSettings()
    action = policy.classify(signal(p_up=0.8), 0.02, default_limits(settings), settings)
    assert action.kind == NOTHING and codes(action.reasons) == ["already_positioned"]
    assert (
        policy.classify(signal(p_up=0.8), 0.02, default_limits(settings), RiskSettings(allow_pyramiding=True)).kind
        == ENTRY
    )


def test_exits_ignore_confidence_thresholds() -> None:
    settings = RiskSettings(horizon_rules={1: HorizonRule(min_confidence=0.99, min_edge=0.5)})
    limits = default_limits(settings)
    limits.min_confidence, limits.min_edge, limits.min_expected_return_bps = 0.99, 0.9, 50.0
    held = policy.Holding(opened_ns=0)
    exit_ = signal(p_up=0.45, expected_return_bps=-(settings.exit_hysteresis_bps + 5))
    action = policy.classify(exit_, 0.02, limits, settings, held, settings.min_hold_ns)
    assert action.kind == EXIT and codes(action.reasons) == ["exit"]


@pytest.mark.parametrize(
    ("value", "step", "expected"),
    [(0.0123456, 0.00001, 0.01234), (1.999999999, 0.001, 1.999), (3.0, 0.1, 3.0), (0.29, 0.1, 0.2)],
)
def test_floor_to_step(value: float, step: float, expected: float) -> None:
    assert policy.floor_to_step(value, step) == expected


def test_edge_fraction_is_a_fraction_of_kelly_capped_by_risk_fraction() -> None:
    settings = RiskSettings()
    cap = default_limits(settings).risk_fraction
    sig = signal(expected_return_bps=20.0, volatility_bps=100.0, row_interval_s=1.0)
    pred = policy.best_prediction(sig)
    assert pred is not None and pred.horizon == 1  # ties go to the shorter horizon
    # Kelly = expected return / variance of the horizon's move (volatility per row, 60 rows in a minute).
    kelly = (20.0 / 1e4) / ((100.0 / 1e4) ** 2 * 60)
    fraction, binding = policy.edge_fraction(pred, sig, settings, cap)
    assert binding == "edge_volatility" and fraction == pytest.approx(settings.kelly_fraction * kelly)
    assert settings.kelly_fraction * kelly < cap
    calm = signal(expected_return_bps=20.0, volatility_bps=2.0, row_interval_s=1.0)  # Kelly far over the cap
    assert policy.edge_fraction(policy.best_prediction(calm), calm, settings, cap) == (cap, "risk_fraction")
    assert policy.edge_fraction(pred, signal(expected_return_bps=20.0), settings, cap) == (cap, "risk_fraction")


def test_sizing_takes_the_tightest_cap_and_venue_filters() -> None:
    settings = RiskSettings()
    limits = default_limits(settings)
    filt = SymbolFilter(step_size=0.001, tick_size=0.01, min_notional=10.0)
    # A quarter Kelly (expected 20 bps, 100 bps a row over 60 rows) is the tightest cap.
    sig = signal(expected_return_bps=20.0, volatility_bps=100.0, row_interval_s=1.0)
    fraction = policy.edge_fraction(policy.best_prediction(sig), sig, settings, limits.risk_fraction)
    s = policy.size_entry(50_000.0, 10_000.0, limits, 2_000.0, 5_000.0, filt, fraction)
    expected_qty = policy.floor_to_step(10_000.0 * settings.kelly_fraction * (20e-4 / (1e-2**2 * 60)) / 50_000.0, 0.001)
    assert (s.quantity, s.binding, s.reason) == (expected_qty, "edge_volatility", "")
    assert s.quantity == 0.016 and s.notional <= 10_000.0 * fraction[0]
    # Without a Kelly estimate the risk_fraction cap sizes it: 5% of 10k = 500, the tightest cap.
    lean = risk_pb2.RiskLimits()
    lean.CopyFrom(limits)
    lean.risk_fraction = 0.05
    s = policy.size_entry(50_000.0, 10_000.0, lean, 2_000.0, 5_000.0, filt)
    assert (s.quantity, s.binding, s.reason) == (0.01, "risk_fraction", "")
    # The symbol's headroom binds, and the quantity rounds down to the step.
    s = policy.size_entry(50_000.0, 10_000.0, limits, 149.0, 5_000.0, filt)
    assert s.binding == "max_symbol_notional" and s.quantity == 0.002 and s.notional <= 149.0
    # Too little room left for the venue's minimum notional: rejected, naming the cap.
    s = policy.size_entry(50_000.0, 10_000.0, limits, 2_000.0, 8.0, filt)
    assert codes([s.reason]) == ["max_gross_exposure"] and "minimum notional" in s.reason
    s = policy.size_entry(50_000.0, 10_000.0, limits, -5.0, 5_000.0, filt)
    assert codes([s.reason]) == ["max_symbol_notional"]


def test_protection_prices_bracket_the_entry_on_its_side() -> None:
    limits = default_limits(RiskSettings())
    limits.take_profit_bps, limits.stop_loss_bps = 100.0, 50.0
    assert policy.protection(BUY, 100.0, limits, 0.01) == (101.0, 99.5)
    assert policy.protection(SELL, 100.0, limits, 0.01) == (99.0, 100.5)
    limits.take_profit_bps = limits.stop_loss_bps = 0.0
    assert policy.protection(BUY, 100.0, limits, 0.01) == (0.0, 0.0)

"""Decision policy: entry vs exit, thresholds per horizon, regimes, sizing, venue filters, protection."""

from __future__ import annotations

import pytest

from quantumedge.risk import policy
from quantumedge.risk.limit_config import default_limits
from quantumedge.risk.settings import HorizonRule, RiskSettings, SymbolFilter
from quantumedge.v1 import common_pb2, risk_pb2
from tests.unit.risk.builders import BUY, SELL, signal

ENTRY, EXIT, NOTHING = risk_pb2.INTENT_KIND_ENTRY, risk_pb2.INTENT_KIND_EXIT, risk_pb2.INTENT_KIND_UNSPECIFIED


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
    assert any(r.startswith("min_confidence:") for r in action.reasons)
    assert any(r.startswith("min_edge:") for r in action.reasons)


def test_per_horizon_rules_apply_to_each_horizon() -> None:
    settings = RiskSettings(horizon_rules={30: HorizonRule(min_confidence=0.6, min_edge=0.2)})
    sig = signal(p_up=0.7)
    del sig.predictions[:]
    sig.predictions.add(horizon=1, p_up=0.7)
    sig.predictions.add(horizon=30, p_up=0.55)  # the long horizon is lukewarm
    reasons = policy.classify(sig, 0.0, default_limits(settings), settings).reasons
    assert any("horizon 30 min_confidence" in r for r in reasons)
    assert any("horizon 30 min_edge" in r for r in reasons)
    settings = RiskSettings(horizon_rules={5: HorizonRule()})
    del sig.predictions[:]
    assert (
        "horizon 5: no prediction in the signal"
        in policy.classify(sig, 0.0, default_limits(settings), settings).reasons
    )


def test_regime_policy_decides_which_side_may_open() -> None:
    settings = RiskSettings(allow_short=True)
    limits = default_limits(settings)
    up = policy.classify(signal(p_up=0.7, regime=common_pb2.REGIME_HIGH_VOL_TREND_UP), 0.0, limits, settings)
    assert up.reasons == []
    against = policy.classify(signal(p_up=0.3, regime=common_pb2.REGIME_HIGH_VOL_TREND_UP), 0.0, limits, settings)
    assert against.side == SELL and any(r.startswith("regime:") for r in against.reasons)
    wild = policy.classify(signal(p_up=0.7, regime=common_pb2.REGIME_HIGH_VOL_RANGE), 0.0, limits, settings)
    assert any("REGIME_HIGH_VOL_RANGE does not allow BUY" in r for r in wild.reasons)
    untagged = policy.classify(signal(p_up=0.7, regime=common_pb2.REGIME_UNSPECIFIED), 0.0, limits, settings)
    assert any(r.startswith("regime:") for r in untagged.reasons)


def test_spot_sell_signal_without_position_opens_nothing() -> None:
    settings = RiskSettings()
    action = policy.classify(signal(p_up=0.2), 0.0, default_limits(settings), settings)
    assert any(r.startswith("allow_short:") for r in action.reasons)


def test_long_position_exits_on_flip_and_on_weakening_when_configured() -> None:
    settings = RiskSettings()
    limits = default_limits(settings)
    flip = policy.classify(signal(p_up=0.4), 0.02, limits, settings)
    assert (flip.kind, flip.side) == (EXIT, SELL)
    assert "flipped" in flip.reasons[0]
    # Still positive but weak: kept by default, exited when exit_below_edge asks for conviction.
    weak = signal(p_up=0.51)
    assert policy.classify(weak, 0.02, limits, settings).kind == NOTHING
    strict = RiskSettings(exit_below_edge=0.05)
    weakened = policy.classify(weak, 0.02, limits, strict)
    assert weakened.kind == EXIT and "weakened" in weakened.reasons[0]


def test_same_side_signal_while_positioned_does_not_pyramid() -> None:
    settings = RiskSettings()
    action = policy.classify(signal(p_up=0.8), 0.02, default_limits(settings), settings)
    assert action.kind == NOTHING and "already positioned" in action.reasons[0]
    assert (
        policy.classify(signal(p_up=0.8), 0.02, default_limits(settings), RiskSettings(allow_pyramiding=True)).kind
        == ENTRY
    )


def test_exits_ignore_confidence_thresholds() -> None:
    settings = RiskSettings()
    limits = default_limits(settings)
    limits.min_confidence = 0.99
    assert policy.classify(signal(p_up=0.45), 0.02, limits, settings).kind == EXIT


@pytest.mark.parametrize(
    ("value", "step", "expected"),
    [(0.0123456, 0.00001, 0.01234), (1.999999999, 0.001, 1.999), (3.0, 0.1, 3.0), (0.29, 0.1, 0.2)],
)
def test_floor_to_step(value: float, step: float, expected: float) -> None:
    assert policy.floor_to_step(value, step) == expected


def test_sizing_takes_the_tightest_cap_and_venue_filters() -> None:
    limits = default_limits(RiskSettings())
    filt = SymbolFilter(step_size=0.001, tick_size=0.01, min_notional=10.0)
    # 5% of 10k = 500 is the tightest cap.
    s = policy.size_entry(50_000.0, 10_000.0, limits, 2_000.0, 5_000.0, filt)
    assert (s.quantity, s.binding, s.reason) == (0.01, "risk_fraction", "")
    # The symbol's headroom binds, and the quantity rounds down to the step.
    s = policy.size_entry(50_000.0, 10_000.0, limits, 149.0, 5_000.0, filt)
    assert s.binding == "max_symbol_notional" and s.quantity == 0.002 and s.notional <= 149.0
    # Too little room left for the venue's minimum notional: rejected, naming the cap.
    s = policy.size_entry(50_000.0, 10_000.0, limits, 2_000.0, 8.0, filt)
    assert s.reason.startswith("max_gross_exposure:") and "minimum notional" in s.reason
    s = policy.size_entry(50_000.0, 10_000.0, limits, -5.0, 5_000.0, filt)
    assert s.reason.startswith("max_symbol_notional:")


def test_protection_prices_bracket_the_entry_on_its_side() -> None:
    limits = default_limits(RiskSettings())
    limits.take_profit_bps, limits.stop_loss_bps = 100.0, 50.0
    assert policy.protection(BUY, 100.0, limits, 0.01) == (101.0, 99.5)
    assert policy.protection(SELL, 100.0, limits, 0.01) == (99.0, 100.5)
    limits.take_profit_bps = limits.stop_loss_bps = 0.0
    assert policy.protection(BUY, 100.0, limits, 0.01) == (0.0, 0.0)

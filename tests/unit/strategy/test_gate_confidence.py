"""The gate's held-out expectancy must be positive with confidence, over enough trades: a positive mean
over a handful of round trips (each wins ~+60 bp or loses ~-50 bp) is mostly luck."""

from __future__ import annotations

import math

from quantumedge.backtest.trades import expectancy_interval
from quantumedge.training.gate import GateConfig, judge

GOOD_OOS = {
    "oos_folds": 3,
    "oos_rows": 50_000,
    "oos_log_loss": 0.40,
    "oos_base_log_loss": 0.50,
    "oos_brier": 0.12,
    "oos_base_brier": 0.15,
    "oos_ece": 0.05,
}


def _figures(returns: list[float]) -> dict[str, float]:
    mean, lo, _ = expectancy_interval(returns)
    figs = {**GOOD_OOS, "holdout_trades": len(returns), "holdout_expectancy_bps": mean}
    if math.isfinite(lo):
        figs["holdout_expectancy_lcb_bps"] = lo
    return figs


def _codes(failures: list[str]) -> set[str]:
    return {f.split(":")[0] for f in failures}


def test_the_interval_is_the_mean_and_its_normal_bounds() -> None:
    mean, lo, hi = expectancy_interval([60.0, -50.0] * 10)
    sd = math.sqrt(sum((x - 5.0) ** 2 for x in [60.0, -50.0] * 10) / 19)
    assert mean == 5.0 and math.isclose(hi - mean, 1.96 * sd / math.sqrt(20)) and math.isclose(mean - lo, hi - mean)
    assert expectancy_interval([12.0]) == (12.0, -math.inf, math.inf)


def test_a_positive_mean_that_is_not_proven_is_refused_naming_its_lower_bound() -> None:
    # 12 wins and 10 losses: +10 bp per trade on average, but the 95% interval reaches below 0.
    figs = _figures([60.0] * 12 + [-50.0] * 10)
    assert figs["holdout_expectancy_bps"] > 0 > figs["holdout_expectancy_lcb_bps"]
    failures = judge(figs, GateConfig())
    assert _codes(failures) == {"holdout_expectancy"}
    assert f"{figs['holdout_expectancy_lcb_bps']:+.2f}" in failures[0]


def test_too_few_trades_are_refused_whatever_they_earned() -> None:
    figs = _figures([60.0] * 8 + [-50.0])  # +47.8 bp over 9 trades, lower bound above 0
    assert figs["holdout_expectancy_lcb_bps"] > 0
    assert _codes(judge(figs, GateConfig())) == {"holdout_trades"}


def test_a_proven_edge_passes() -> None:
    figs = _figures([60.0] * 30 + [-50.0] * 10)
    assert figs["holdout_expectancy_lcb_bps"] > 0 and judge(figs, GateConfig()) == []


def test_figures_without_a_lower_bound_are_refused() -> None:
    # A registry written before the bound existed: the gate does not assume it passed.
    figs = {**GOOD_OOS, "holdout_trades": 40, "holdout_expectancy_bps": 30.0}
    assert _codes(judge(figs, GateConfig())) == {"holdout_expectancy"}

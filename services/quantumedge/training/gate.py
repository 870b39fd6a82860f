"""The promotion gate: figures a model must show out of sample before it may trade.

  * log loss and Brier score below the base rate's (the training block's label mean, predicted for
    every row) on the pooled out-of-sample predictions of purged walk-forward folds;
  * calibration checked out of sample: the expected calibration error of those predictions;
  * a cost-aware backtest on the held-out tail, through the same features, risk, paper execution and
    fees as the services (backtest/simulation.py), over at least `min_trades` round trips, whose mean
    net return per trade is positive with confidence: the lower bound of its 95% interval is above 0.
    A mean over a few trades is mostly luck (a round trip wins ~+60 bp or loses ~-50 bp, so 20 trades
    leave a standard error near 11 bp), and a positive mean alone passed models that lost elsewhere.
A refusal names each failing figure; the figures go into the manifest either way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from quantumedge.inference.models import ModelSet, ServedModel, SymbolPredictor
from quantumedge.inference.registry import ModelEntry, sha256_bytes
from quantumedge.v1 import market_pb2

# (symbol, from_ns) -> the recording's events of that symbol from that time on, in time order.
EventSource = Callable[[str, int], Iterable[market_pb2.MarketEvent]]


@dataclass(frozen=True)
class GateConfig:
    max_ece: float = 0.1
    min_trades: int = 20
    warmup_s: float = 3600.0  # the held-out backtest starts this much earlier (features warm up, no trades)


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the row-weighted gap between mean prediction and outcome per bin."""
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() * abs(float(p[m].mean()) - float(y[m].mean()))
    return total / max(1, len(y))


def judge(figures: dict[str, float], cfg: GateConfig) -> list[str]:
    """The failing figures, each named (empty = the gate passes)."""
    f = figures
    out = []
    rows = f"out of sample, {int(f['oos_folds'])} purged folds, {int(f['oos_rows'])} rows"
    if not f["oos_log_loss"] < f["oos_base_log_loss"]:
        out.append(f"log_loss: {f['oos_log_loss']:.5f} >= base rate {f['oos_base_log_loss']:.5f} ({rows})")
    if not f["oos_brier"] < f["oos_base_brier"]:
        out.append(f"brier: {f['oos_brier']:.5f} >= base rate {f['oos_base_brier']:.5f} ({rows})")
    if not f["oos_ece"] <= cfg.max_ece:
        out.append(f"calibration: ECE {f['oos_ece']:.4f} > {cfg.max_ece:g} ({rows})")
    trades = int(f.get("holdout_trades", 0))
    if trades < cfg.min_trades:
        out.append(f"holdout_trades: {trades} round trips < {cfg.min_trades} in the held-out backtest")
    elif not f.get("holdout_expectancy_lcb_bps", -math.inf) > 0:
        out.append(
            f"holdout_expectancy: {f['holdout_expectancy_bps']:+.2f} bps per trade net of fees, 95% lower bound"
            f" {f.get('holdout_expectancy_lcb_bps', -math.inf):+.2f} <= 0 over {trades} held-out trades"
        )
    return out


def candidate_models(entry: ModelEntry, onnx: bytes, n_features: int) -> ModelSet:
    """A ModelSet serving one unregistered model (the held-out backtest's)."""
    served = ServedModel(entry, onnx)
    return ModelSet(
        predictors={entry.symbol: SymbolPredictor(entry.symbol, [served], n_features, combine=False)},
        served={(entry.symbol, entry.horizon): served},
    )


def judging_settings(settings):
    """The settings a strategy is judged on: the services' own, with the loss-streak pause off.

    That pause is an operator's safety stop that only a Resume lifts; in a backtest nobody resumes, so
    the first unlucky run of losses would end the sample and the figures would measure luck. Every other
    limit, fee and guard applies as configured."""
    limits = settings.risk.limits.model_copy(update={"max_loss_streak": 0})
    return settings.model_copy(update={"risk": settings.risk.model_copy(update={"limits": limits})})


def holdout_backtest(
    settings,
    events: EventSource,
    entry: ModelEntry,
    onnx: bytes,
    n_features: int,
    holdout_start_ns: int,
    cfg: GateConfig,
) -> dict[str, float]:
    """Trade the candidate alone on the held-out tail; its round trips' figures."""
    from quantumedge.backtest.simulation import Backtest
    from quantumedge.backtest.trades import TradeBook, expectancy, expectancy_interval

    entry.sha256 = entry.sha256 or sha256_bytes(onnx)
    run_settings = judging_settings(settings).model_copy(update={"symbols": [entry.symbol]})
    book = TradeBook()
    run = Backtest(run_settings, candidate_models(entry, onnx, n_features), [book], decide_from_ns=holdout_start_ns)
    run.run(events(entry.symbol, holdout_start_ns - int(cfg.warmup_s * 1e9)))
    figs = expectancy(book.trades)
    _, lcb, _ = expectancy_interval([t.return_bps for t in book.trades])
    bound = {"holdout_expectancy_lcb_bps": lcb} if math.isfinite(lcb) else {}  # JSON has no infinity
    return {
        **bound,
        "holdout_trades": figs["trades"],
        "holdout_expectancy_bps": figs["expectancy_bps"],
        "holdout_win_rate": figs["win_rate"],
        "holdout_net_pnl": figs["net_pnl"],
        "holdout_signals": run.result.signals,
    }

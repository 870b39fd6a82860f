"""Soft conditions that move a scope to REDUCING by themselves, each under its own reason code (pure).

- model_stale (per symbol): market data flows but no signal came for model_stale_after_ns. Counted from
  the later of the symbol's last signal and its first market event since start, so a model that never
  answers is stale too; a fresh signal lifts it.
- soft_loss (the account): the loss today passed soft_daily_loss_fraction of daily_loss_limit, before the
  hard limit halts; lifted when the loss is back under it (or at the UTC day rollover).
- venue_failing (per symbol): execution raised an operator alert (an order's outcome unknown past its bound)
  or the venue rejected venue_reject_streak orders in a row; a fill on the symbol shows the venue trading
  again and lifts it.
Drift (model_drift) is followed by the engine on each signal.
"""

from __future__ import annotations

from quantumedge.risk.domain.trading_state import ACCOUNT, MODEL_STALE, SOFT_LOSS, VENUE_FAILING, TradingStates
from quantumedge.risk.settings import RiskSettings
from quantumedge.v1 import execution_pb2, risk_pb2

# Refusals execution makes itself before anything reaches the venue: not the venue failing.
OWN_REFUSALS = frozenset({"HALTED", "REDUCING", "EXITS_ONLY", "NO_POSITION"})


class SoftConditions:
    def __init__(self, settings: RiskSettings, trading: TradingStates) -> None:
        self.settings = settings
        self.trading = trading
        self.last_signal_ns: dict[str, int] = {}
        self.first_market_ns: dict[str, int] = {}
        self.reject_streak: dict[str, int] = {}

    def on_signal(self, symbol: str, now_ns: int) -> None:
        self.last_signal_ns[symbol] = now_ns
        self.trading.lift(symbol, MODEL_STALE, now_ns)

    def on_market(self, symbol: str, now_ns: int) -> None:
        bound = self.settings.model_stale_after_ns
        if not bound or not symbol:
            return
        since = max(self.last_signal_ns.get(symbol, 0), self.first_market_ns.setdefault(symbol, now_ns))
        if now_ns - since > bound:
            detail = f"no signal for {(now_ns - since) / 1e9:.0f}s while market data flows (bound {bound / 1e9:g}s)"
            self.trading.reduce(symbol, MODEL_STALE, detail, now_ns)

    def check_loss(self, loss_today: float, limits: risk_pb2.RiskLimits, now_ns: int) -> None:
        fraction = limits.soft_daily_loss_fraction
        if fraction <= 0 or limits.daily_loss_limit <= 0:
            self.trading.lift(ACCOUNT, SOFT_LOSS, now_ns)
            return
        threshold = fraction * limits.daily_loss_limit
        if loss_today >= threshold:
            detail = f"loss today {loss_today:.2f} >= {fraction:g} x daily_loss_limit {limits.daily_loss_limit:g}"
            self.trading.reduce(ACCOUNT, SOFT_LOSS, detail, now_ns)
        else:
            self.trading.lift(ACCOUNT, SOFT_LOSS, now_ns)

    def on_report(self, report: execution_pb2.ExecutionReport, now_ns: int) -> None:
        symbol = report.order.symbol
        if not symbol:
            return
        if report.alert:
            self.trading.reduce(symbol, VENUE_FAILING, f"execution alert {report.alert}: {report.note}", now_ns)
        if report.HasField("fill") and report.fill.quantity > 0:
            self.reject_streak.pop(symbol, None)
            if not report.alert:
                self.trading.lift(symbol, VENUE_FAILING, now_ns)
            return
        order = report.order
        if order.status != execution_pb2.ORDER_STATUS_REJECTED or order.reject_code in OWN_REFUSALS:
            return
        streak = self.reject_streak.get(symbol, 0) + 1
        self.reject_streak[symbol] = streak
        limit = self.settings.venue_reject_streak
        if limit and streak >= limit:
            detail = f"{streak} venue rejections in a row (last {order.reject_code}: {order.reject_message})"
            self.trading.reduce(symbol, VENUE_FAILING, detail, now_ns)

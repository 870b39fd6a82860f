"""Round trips as a quant reads them: entry, exit, duration, return net of costs and why it ended.

`TradeBook` observes a run (signals, decisions, reports). A trade opens with the first fill from flat
and closes when the position is flat again; its PnL is the realised PnL (fees included) execution
reported over its fills, its return that PnL over the entry notional. The exit reason is the closing
order's role: take_profit, stop_loss, or for a market exit signal_exit (risk approved an exit intent)
or time_stop (execution's own). Its horizon is the entry's time stop, its regime the entry signal's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from quantumedge.v1 import common_pb2, execution_pb2, risk_pb2, signal_pb2

_REASONS = {
    execution_pb2.ORDER_ROLE_TAKE_PROFIT: "take_profit",
    execution_pb2.ORDER_ROLE_STOP_LOSS: "stop_loss",
}


@dataclass
class Trade:
    symbol: str
    side: str
    entry_ns: int
    exit_ns: int = 0
    quantity: float = 0.0
    entry_notional: float = 0.0
    exit_notional: float = 0.0
    pnl: float = 0.0  # net of fees
    fees: float = 0.0
    reason: str = ""
    horizon_min: int = 0
    regime: str = ""

    @property
    def duration_s(self) -> float:
        return max(0, self.exit_ns - self.entry_ns) / 1e9

    @property
    def return_bps(self) -> float:
        return self.pnl / self.entry_notional * 1e4 if self.entry_notional else 0.0

    @property
    def entry_price(self) -> float:
        return self.entry_notional / self.quantity if self.quantity else 0.0


@dataclass
class TradeBook:
    trades: list[Trade] = field(default_factory=list)
    _open: dict[str, Trade] = field(default_factory=dict)
    _signal_regime: dict[str, str] = field(default_factory=dict)
    _intent_signal: dict[str, str] = field(default_factory=dict)
    _exit_pending: set[str] = field(default_factory=set)

    def on_signal(self, signal: signal_pb2.Signal) -> None:
        self._signal_regime[signal.signal_id] = common_pb2.Regime.Name(signal.regime)
        if len(self._signal_regime) > 10_000:  # only entries' signals are needed, and soon
            self._signal_regime.pop(next(iter(self._signal_regime)))

    def on_decision(self, decision: risk_pb2.RiskDecision) -> None:
        if not decision.approved:
            return
        intent = decision.intent
        if intent.kind == risk_pb2.INTENT_KIND_EXIT:
            self._exit_pending.add(intent.symbol)
        else:
            self._intent_signal[intent.intent_id] = self._signal_regime.get(decision.signal_id, "")

    def on_report(self, report: execution_pb2.ExecutionReport) -> None:
        if not report.HasField("fill"):
            return
        order, fill = report.order, report.fill
        symbol = order.symbol
        trade = self._open.get(symbol)
        if trade is None:
            trade = self._open[symbol] = Trade(
                symbol,
                common_pb2.Side.Name(order.side).removeprefix("SIDE_"),
                fill.time_ns or report.time_ns,
                horizon_min=int(order.time_stop_ns // 60_000_000_000),
                regime=self._intent_signal.pop(order.intent_id, ""),
            )
        notional = fill.price * fill.quantity
        if order.role == execution_pb2.ORDER_ROLE_ENTRY:
            trade.quantity += fill.quantity
            trade.entry_notional += notional
        else:
            trade.exit_notional += notional
        trade.pnl += report.realized_pnl_delta
        trade.fees += report.fee_delta
        if report.position.quantity == 0:
            trade.exit_ns = fill.time_ns or report.time_ns
            trade.reason = _REASONS.get(order.role) or ("signal_exit" if symbol in self._exit_pending else "time_stop")
            self._exit_pending.discard(symbol)
            self.trades.append(self._open.pop(symbol))

    def on_equity(self, point) -> None:  # the Observer protocol; the equity curve is the report's
        pass


def expectancy(trades: list[Trade]) -> dict[str, float]:
    """Per-trade figures net of costs: count, mean return (bps), win rate, profit factor, PnL."""
    n = len(trades)
    if not n:
        return {"trades": 0, "expectancy_bps": 0.0, "win_rate": 0.0, "profit_factor": 0.0, "net_pnl": 0.0}
    gains = sum(t.pnl for t in trades if t.pnl > 0)
    losses = -sum(t.pnl for t in trades if t.pnl < 0)
    return {
        "trades": n,
        "expectancy_bps": sum(t.return_bps for t in trades) / n,
        "win_rate": sum(t.pnl > 0 for t in trades) / n,
        "profit_factor": gains / losses if losses else float("inf") if gains else 0.0,
        "net_pnl": sum(t.pnl for t in trades),
    }


Z95 = 1.96  # two-sided 95% normal quantile


def expectancy_interval(returns_bps: list[float], z: float = Z95) -> tuple[float, float, float]:
    """(mean, lower, upper): the mean net return per trade and its normal confidence interval (bps).

    With fewer than two trades the interval is unbounded: a sample that small proves nothing."""
    n = len(returns_bps)
    mean = sum(returns_bps) / n if n else 0.0
    if n < 2:
        return mean, -math.inf, math.inf
    sd = math.sqrt(sum((x - mean) ** 2 for x in returns_bps) / (n - 1))
    half = z * sd / math.sqrt(n)
    return mean, mean - half, mean + half

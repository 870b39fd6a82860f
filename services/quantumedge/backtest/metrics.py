"""What a backtest shows: counts, PnL per symbol, drawdown, round trips and why things were refused.

`FigureBuilder` is an observer of the run: it folds each decision, execution report and equity point in
as it happens (constant memory whatever the length of the run). The figures come from the execution
reports themselves, the records risk learns from, and the tests hold them against the execution
engine's own totals at the end.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from quantumedge.backtest.simulation import BacktestResult, EquityPoint
from quantumedge.v1 import execution_pb2, risk_pb2

_ACCEPTED = {
    execution_pb2.ORDER_STATUS_NEW,
    execution_pb2.ORDER_STATUS_PARTIALLY_FILLED,
    execution_pb2.ORDER_STATUS_FILLED,
    execution_pb2.ORDER_STATUS_CANCELED,
    execution_pb2.ORDER_STATUS_EXPIRED,
}


@dataclass
class SymbolFigures:
    symbol: str
    orders: int = 0  # accepted by the (paper) venue
    rejected_orders: int = 0  # refused by execution or the venue
    fills: int = 0
    fees: float = 0.0
    realized_pnl: float = 0.0  # net of fees
    unrealized_pnl: float = 0.0
    round_trips: int = 0
    wins: int = 0
    position: float = 0.0

    @property
    def pnl(self) -> float:
        return self.realized_pnl + self.unrealized_pnl


@dataclass
class Figures:
    events: int
    untimed_events: int
    rows: int
    signals: int
    intents: int
    rejections: int
    orders: int
    rejected_orders: int
    fills: int
    fees: float
    realized_pnl: float
    unrealized_pnl: float
    starting_equity: float
    final_equity: float
    max_drawdown: float  # quote currency, peak to trough of the sampled equity curve
    max_drawdown_fraction: float
    round_trips: int
    wins: int
    span_s: float
    halts: list[str]
    halted_at_end: bool
    rejections_by_reason: Counter = field(default_factory=Counter)
    order_rejects_by_code: Counter = field(default_factory=Counter)
    per_symbol: dict[str, SymbolFigures] = field(default_factory=dict)

    @property
    def pnl(self) -> float:
        return self.realized_pnl + self.unrealized_pnl

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.round_trips if self.round_trips else None


def reason_name(reason: str) -> str:
    """The check's name: what a rejection reason says before its details ("cooldown_after_exit: 3.2s ...")."""
    return reason.split(":", 1)[0].strip() or reason


class FigureBuilder:
    """Observer of a run; `figures(result)` once it is over."""

    def __init__(self, symbols: list[str]) -> None:
        self.per = {s: SymbolFigures(s) for s in symbols}
        self.reasons: Counter = Counter()
        self.reject_codes: Counter = Counter()
        self.intents = 0
        self.rejections = 0
        self._accepted: set[str] = set()
        self._rejected: set[str] = set()
        # Open round trips: symbol -> realised result so far (entry fees included).
        self._trips: dict[str, float] = {}
        self._trip_side: dict[str, int] = {}
        self._peak: float | None = None
        self.max_drawdown = 0.0
        self.max_drawdown_fraction = 0.0

    def _symbol(self, symbol: str) -> SymbolFigures:
        fig = self.per.get(symbol)
        if fig is None:
            fig = self.per[symbol] = SymbolFigures(symbol)
        return fig

    # -- observer ----------------------------------------------------------------------------------
    def on_decision(self, decision: risk_pb2.RiskDecision) -> None:
        if decision.approved:
            self.intents += 1
        else:
            self.rejections += 1
            self.reasons.update({reason_name(r) for r in decision.reasons} or {"unexplained"})

    def on_report(self, report: execution_pb2.ExecutionReport) -> None:
        symbol = report.order.symbol or report.position.symbol
        if not symbol:
            return
        fig = self._symbol(symbol)
        order = report.order
        if order.client_order_id:
            if order.status in _ACCEPTED and order.client_order_id not in self._accepted:
                self._accepted.add(order.client_order_id)
                fig.orders += 1
            elif order.status == execution_pb2.ORDER_STATUS_REJECTED and order.client_order_id not in self._rejected:
                self._rejected.add(order.client_order_id)
                fig.rejected_orders += 1
                self.reject_codes[order.reject_code or "unspecified"] += 1
        fig.realized_pnl += report.realized_pnl_delta
        fig.fees += report.fee_delta
        if not report.HasField("fill"):
            return
        fig.fills += 1
        self._round_trip(fig, report)

    def _round_trip(self, fig: SymbolFigures, report: execution_pb2.ExecutionReport) -> None:
        """A round trip runs from flat to flat; a fill that flips the position closes one and opens the next."""
        symbol, after = fig.symbol, report.position.quantity
        delta = report.realized_pnl_delta
        if symbol in self._trips:
            self._trips[symbol] += delta
            before_sign = self._trip_side.get(symbol, 0)
            if after == 0 or (after > 0) != (before_sign > 0):
                fig.round_trips += 1
                fig.wins += self._trips.pop(symbol) > 0
                self._trip_side.pop(symbol, None)
                if after != 0:  # flipped: the rest of the fill opened the other side
                    self._trips[symbol] = 0.0
                    self._trip_side[symbol] = 1 if after > 0 else -1
        elif after != 0:
            self._trips[symbol] = delta
            self._trip_side[symbol] = 1 if after > 0 else -1

    def on_equity(self, point: EquityPoint) -> None:
        if self._peak is None or point.equity > self._peak:
            self._peak = point.equity
        fall = self._peak - point.equity
        self.max_drawdown = max(self.max_drawdown, fall)
        if self._peak > 0:
            self.max_drawdown_fraction = max(self.max_drawdown_fraction, fall / self._peak)

    # -- the result --------------------------------------------------------------------------------
    def figures(self, result: BacktestResult) -> Figures:
        per = self.per
        for p in result.final_positions:
            fig = self._symbol(p.symbol)
            fig.unrealized_pnl = p.unrealized_pnl
            fig.position = p.quantity
        realized = sum(f.realized_pnl for f in per.values())
        unrealized = sum(f.unrealized_pnl for f in per.values())
        return Figures(
            events=result.events,
            untimed_events=result.untimed_events,
            rows=result.rows,
            signals=result.signals,
            intents=self.intents,
            rejections=self.rejections,
            orders=sum(f.orders for f in per.values()),
            rejected_orders=sum(f.rejected_orders for f in per.values()),
            fills=sum(f.fills for f in per.values()),
            fees=sum(f.fees for f in per.values()),
            realized_pnl=realized,
            unrealized_pnl=unrealized,
            starting_equity=result.starting_equity,
            final_equity=result.starting_equity + realized + unrealized,
            max_drawdown=self.max_drawdown,
            max_drawdown_fraction=self.max_drawdown_fraction,
            round_trips=sum(f.round_trips for f in per.values()),
            wins=sum(f.wins for f in per.values()),
            span_s=max(0, result.last_time_ns - result.first_time_ns) / 1e9,
            halts=[f"{h.limit}: {h.detail}" for h in result.halts],
            halted_at_end=result.halted_at_end,
            rejections_by_reason=self.reasons,
            order_rejects_by_code=self.reject_codes,
            per_symbol=per,
        )

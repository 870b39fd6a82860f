"""What a backtest shows: counts, PnL per symbol, drawdown, round trips and why signals were refused.

Pure arithmetic over a `BacktestResult`; the figures come from the execution reports themselves (the
same records risk learns from), so they add up to what the execution engine holds at the end.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from quantumedge.backtest.simulation import BacktestResult, EquityPoint


@dataclass
class SymbolFigures:
    symbol: str
    orders: int = 0
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
    rows: int
    signals: int
    intents: int
    rejections: int
    orders: int
    fills: int
    fees: float
    realized_pnl: float
    unrealized_pnl: float
    starting_equity: float
    final_equity: float
    max_drawdown: float  # quote currency, peak to trough
    max_drawdown_fraction: float
    round_trips: int
    wins: int
    span_s: float
    halts: list[str]
    rejections_by_reason: Counter = field(default_factory=Counter)
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


def drawdown(curve: list[EquityPoint]) -> tuple[float, float]:
    """(largest peak-to-trough fall, that fall as a fraction of its peak)."""
    peak = None
    worst = worst_fraction = 0.0
    for point in curve:
        peak = point.equity if peak is None or point.equity > peak else peak
        fall = peak - point.equity
        if fall > worst:
            worst = fall
        if peak > 0 and fall / peak > worst_fraction:
            worst_fraction = fall / peak
    return worst, worst_fraction


def figures(result: BacktestResult) -> Figures:
    per = {s: SymbolFigures(s) for s in result.symbols}
    reasons: Counter = Counter()
    intents = rejections = 0
    for d in result.decisions:
        if d.approved:
            intents += 1
        else:
            rejections += 1
            reasons.update({reason_name(r) for r in d.reasons} or {"unexplained"})
    orders: dict[str, set[str]] = {s: set() for s in result.symbols}
    trip_pnl: dict[str, float] = {}
    for r in result.reports:
        symbol = r.order.symbol or r.position.symbol
        if not symbol:
            continue
        fig = per.setdefault(symbol, SymbolFigures(symbol))
        if r.order.client_order_id:
            orders.setdefault(symbol, set()).add(r.order.client_order_id)
        fig.realized_pnl += r.realized_pnl_delta
        fig.fees += r.fee_delta
        if r.HasField("fill"):
            fig.fills += 1
        # A round trip runs from a flat position to the next flat one; its result is every realised
        # delta in between (entry fee included).
        if symbol in trip_pnl:
            trip_pnl[symbol] += r.realized_pnl_delta
        if r.position.symbol and r.HasField("fill"):
            was_open = symbol in trip_pnl
            is_open = abs(r.position.quantity) > 0
            if not was_open and is_open:
                trip_pnl[symbol] = r.realized_pnl_delta
            elif was_open and not is_open:
                fig.round_trips += 1
                fig.wins += trip_pnl.pop(symbol) > 0
    for p in result.final_positions:
        fig = per.setdefault(p.symbol, SymbolFigures(p.symbol))
        fig.unrealized_pnl = p.unrealized_pnl
        fig.position = p.quantity
    for s, ids in orders.items():
        per[s].orders = len(ids)
    worst, worst_fraction = drawdown(result.equity)
    realized = sum(f.realized_pnl for f in per.values())
    unrealized = sum(f.unrealized_pnl for f in per.values())
    return Figures(
        events=result.events,
        rows=result.rows,
        signals=result.signals,
        intents=intents,
        rejections=rejections,
        orders=sum(f.orders for f in per.values()),
        fills=sum(f.fills for f in per.values()),
        fees=sum(f.fees for f in per.values()),
        realized_pnl=realized,
        unrealized_pnl=unrealized,
        starting_equity=result.starting_equity,
        final_equity=result.starting_equity + realized + unrealized,
        max_drawdown=worst,
        max_drawdown_fraction=worst_fraction,
        round_trips=sum(f.round_trips for f in per.values()),
        wins=sum(f.wins for f in per.values()),
        span_s=max(0, result.last_time_ns - result.first_time_ns) / 1e9,
        halts=[f"{h.limit}: {h.detail}" for h in result.halts],
        rejections_by_reason=reasons,
        per_symbol=per,
    )

"""The risk ledger: equity, PnL today, peak, drawdown, streaks, orders and exposure (no I/O).

Everything here is learned from execution reports and marks, so every limit moves with real
results; the same replay of execution.reports.v1 rebuilds it after a restart. Times are the
events' own nanosecond timestamps or the `now_ns` the caller passes in: there is no clock here.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from quantumedge.v1 import common_pb2, execution_pb2

DAY_NS = 86_400_000_000_000
FLAT_QTY = 1e-12

_TERMINAL = {
    execution_pb2.ORDER_STATUS_FILLED,
    execution_pb2.ORDER_STATUS_CANCELED,
    execution_pb2.ORDER_STATUS_REJECTED,
    execution_pb2.ORDER_STATUS_EXPIRED,
}


@dataclass
class Holding:
    qty: float = 0.0  # signed: > 0 long
    avg_price: float = 0.0
    trade_pnl: float = 0.0  # realised over the current round trip, net of fees


@dataclass
class Pending:
    """An approved intent execution has not finished yet: it counts towards exposure meanwhile."""

    intent_id: str
    symbol: str
    side: int
    exit: bool
    qty: float
    price: float
    created_ns: int
    # Execution has reported the order working: it stays pending until a terminal status, however long
    # it rests. Only intents never heard of again expire (after the pending TTL).
    acknowledged: bool = False


@dataclass(frozen=True)
class TradeClosed:
    symbol: str
    pnl: float
    time_ns: int


class BoundedSet:
    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, None] = OrderedDict()

    def add(self, key: str) -> bool:
        """Add key; False when it was already there."""
        if key in self._items:
            return False
        self._items[key] = None
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return True

    def newest(self, count: int) -> list[str]:
        """The `count` most recently added keys, oldest first (what a checkpoint keeps of the window)."""
        keys = list(self._items)
        return keys[max(0, len(keys) - count) :]


class RiskLedger:
    def __init__(
        self,
        starting_equity: float,
        dedupe_size: int = 200_000,
        min_tradable: Callable[[str], tuple[float, float]] | None = None,
    ) -> None:
        # symbol -> (min quantity, min notional) the venue trades: less than that is dust, not a position.
        self.min_tradable = min_tradable or (lambda _symbol: (0.0, 0.0))
        # equity = base + realised + unrealised; `base` is re-anchored when a report states the venue equity.
        self.base = starting_equity
        self.realized_total = 0.0
        self.fees_total = 0.0
        self.holdings: dict[str, Holding] = {}
        self.marks: dict[str, float] = {}
        self.mark_times: dict[str, int] = {}
        self.day: int | None = None
        self.day_start_equity = starting_equity
        self.peak_equity = starting_equity
        self.loss_streak = 0
        self.last_loss_ns: dict[str, int] = {}
        self.last_exit_ns: dict[str, int] = {}
        self.last_report_ns = 0
        self.reports_seen = 0
        # Observe-only reports (execution.mode=observe): counted here, apart; never a fill, a position or PnL.
        self.observed_reports = 0
        self.observed_notional = 0.0
        self.pending: dict[str, Pending] = {}
        self._seen_reports = BoundedSet(dedupe_size)
        self._seen_orders = BoundedSet(dedupe_size)
        self._order_times: deque[int] = deque()

    # -- derived figures -----------------------------------------------------------------------------
    def mark(self, symbol: str) -> float:
        mark = self.marks.get(symbol, 0.0)
        if mark > 0:
            return mark
        holding = self.holdings.get(symbol)
        return holding.avg_price if holding else 0.0

    @property
    def unrealized(self) -> float:
        return sum(h.qty * (self.mark(s) - h.avg_price) for s, h in self.holdings.items() if abs(h.qty) > FLAT_QTY)

    @property
    def equity(self) -> float:
        return self.base + self.realized_total + self.unrealized

    @property
    def pnl_today(self) -> float:
        return self.equity - self.day_start_equity

    @property
    def drawdown(self) -> float:
        """Fraction below the peak equity (0 when at the peak)."""
        if self.peak_equity <= 0:
            return 0.0
        return max(0.0, (self.peak_equity - self.equity) / self.peak_equity)

    def is_open(self, symbol: str, qty: float) -> bool:
        """A position, not dust: at least the venue's minimum quantity and notional (dust can be neither sold
        nor added to by an order the venue accepts, so counting it would refuse entries and approve exits that
        the venue refuses, as commission in the base asset once did for 11 minutes)."""
        size = abs(qty)
        if size <= FLAT_QTY:
            return False
        min_qty, min_notional = self.min_tradable(symbol)
        mark = self.mark(symbol)
        return size >= min_qty and not (mark > 0 and size * mark < min_notional)

    def position(self, symbol: str) -> float:
        holding = self.holdings.get(symbol)
        return holding.qty if holding and self.is_open(symbol, holding.qty) else 0.0

    def dust(self, symbol: str) -> float:
        """What is held of the symbol below the tradable minimum (0 when it is a position or nothing)."""
        holding = self.holdings.get(symbol)
        return holding.qty if holding and abs(holding.qty) > FLAT_QTY and not self.is_open(symbol, holding.qty) else 0.0

    def open_symbols(self, now_ns: int, pending_ttl_ns: int) -> set[str]:
        """Symbols with a position or an unfinished entry."""
        out = {s for s, h in self.holdings.items() if self.is_open(s, h.qty)}
        out.update(p.symbol for p in self.live_pending(now_ns, pending_ttl_ns) if not p.exit)
        return out

    def live_pending(self, now_ns: int, pending_ttl_ns: int) -> list[Pending]:
        """Working orders, and intents still within their time to live (unheard-of older ones are dropped)."""
        expired = [k for k, p in self.pending.items() if not p.acknowledged and now_ns - p.created_ns > pending_ttl_ns]
        for key in expired:
            del self.pending[key]
        return list(self.pending.values())

    def exposures(self, now_ns: int, pending_ttl_ns: int) -> dict[str, float]:
        """|position| x mark plus unfinished entries, per symbol, in quote currency (zeros left out)."""
        out: dict[str, float] = {}
        for symbol, holding in self.holdings.items():
            if self.is_open(symbol, holding.qty):
                out[symbol] = abs(holding.qty) * self.mark(symbol)
        for p in self.live_pending(now_ns, pending_ttl_ns):
            if not p.exit:
                out[p.symbol] = out.get(p.symbol, 0.0) + p.qty * p.price
        return {s: out[s] for s in sorted(out) if out[s] > 0}

    def symbol_exposure(self, symbol: str, now_ns: int, pending_ttl_ns: int) -> float:
        return self.exposures(now_ns, pending_ttl_ns).get(symbol, 0.0)

    def gross_exposure(self, now_ns: int, pending_ttl_ns: int) -> float:
        return sum(self.exposures(now_ns, pending_ttl_ns).values())

    def orders_in_window(self, now_ns: int, window_ns: int) -> int:
        while self._order_times and self._order_times[0] <= now_ns - window_ns:
            self._order_times.popleft()
        return len(self._order_times)

    # -- inputs --------------------------------------------------------------------------------------
    def roll_day(self, now_ns: int) -> None:
        """Start a new UTC day: today's PnL counts from the equity at the rollover."""
        day = now_ns // DAY_NS
        if self.day is None or day > self.day:
            self.day = day
            self.day_start_equity = self.equity

    def apply_mark(self, symbol: str, price: float, now_ns: int) -> None:
        if price <= 0:
            return
        self.roll_day(now_ns)
        if now_ns >= self.mark_times.get(symbol, 0):
            self.marks[symbol] = price
            self.mark_times[symbol] = now_ns
        self._update_peak()

    def note_order(self, key: str, time_ns: int) -> None:
        """Count one order towards the over-trading limit (an intent id counts once, however many legs)."""
        if key and self._seen_orders.add(key):
            self._order_times.append(time_ns)

    def add_pending(self, pending: Pending) -> None:
        self.pending[pending.intent_id] = pending
        self.note_order(pending.intent_id, pending.created_ns)

    def acknowledge(self) -> None:
        """The operator resumed: the streak starts again and the peak is today's equity."""
        self.loss_streak = 0
        self.peak_equity = self.equity

    def apply_report(self, report: execution_pb2.ExecutionReport) -> TradeClosed | None:
        """Fold one execution report in; returns the round trip it closed, if any. Duplicates are ignored."""
        if report.report_id and not self._seen_reports.add(report.report_id):
            return None
        t = report.time_ns
        self.roll_day(t)
        self.reports_seen += 1
        self.last_report_ns = max(self.last_report_ns, t)
        if report.observed:
            self._apply_observed(report)
            return None
        order = report.order
        if order.client_order_id or order.intent_id:
            self.note_order(order.intent_id or order.client_order_id, t)
            self._update_pending(order, t)
        self.realized_total += report.realized_pnl_delta
        self.fees_total += report.fee_delta
        closed = self._apply_position(report, t)
        if report.equity > 0:
            # The venue's equity is the truth; the difference to ours is treated as a cash flow
            # (deposit, withdrawal, a starting balance we did not know), not as profit or loss.
            flow = report.equity - self.equity
            self.base += flow
            self.day_start_equity += flow
            self.peak_equity += flow
        self._update_peak()
        return closed

    def replay(self, reports: Iterable[execution_pb2.ExecutionReport], acknowledged_ns: int = 0) -> None:
        """Rebuild from history; the operator's last acknowledgement applies where it happened in time."""
        pending_ack = acknowledged_ns > 0
        for report in sorted(reports, key=lambda r: r.time_ns):
            if pending_ack and report.time_ns >= acknowledged_ns:
                self.acknowledge()
                pending_ack = False
            self.apply_report(report)
        if pending_ack:
            self.acknowledge()

    # -- internals -----------------------------------------------------------------------------------
    def _apply_observed(self, report: execution_pb2.ExecutionReport) -> None:
        """Nothing was sent: the intent is no longer pending and nothing is held, earned or paid."""
        self.observed_reports += 1
        fill = report.hypothetical_fill
        self.observed_notional += abs(fill.price * fill.quantity)
        self.pending.pop(report.order.intent_id, None)

    def _update_peak(self) -> None:
        equity = self.equity
        if equity > self.peak_equity:
            self.peak_equity = equity

    def _update_pending(self, order: execution_pb2.Order, t: int) -> None:
        working = order.role in (execution_pb2.ORDER_ROLE_ENTRY, execution_pb2.ORDER_ROLE_EXIT) and order.quantity > 0
        pending = self.pending.get(order.intent_id)
        if pending is None:
            if working and order.intent_id and order.status not in _TERMINAL:
                # An order risk did not approve in this life (rebuilt from history after a restart, or
                # a manual order): still working, so it counts towards exposure and pyramiding too.
                pending = Pending(
                    order.intent_id,
                    order.symbol,
                    order.side,
                    order.role == execution_pb2.ORDER_ROLE_EXIT,
                    order.quantity,
                    order.price or self.mark(order.symbol),
                    t,
                )
                self.pending[order.intent_id] = pending
            else:
                return
        if order.status in _TERMINAL:
            del self.pending[order.intent_id]
        elif working:
            pending.acknowledged = True
            pending.qty = max(0.0, order.quantity - order.filled_quantity)

    def _apply_position(self, report: execution_pb2.ExecutionReport, t: int) -> TradeClosed | None:
        if not report.HasField("position") or not report.position.symbol:
            holding = self.holdings.get(report.order.symbol)
            if holding is not None and self.is_open(report.order.symbol, holding.qty):
                holding.trade_pnl += report.realized_pnl_delta
            return None
        pos = report.position
        holding = self.holdings.setdefault(pos.symbol, Holding())
        if pos.mark_price > 0 and t >= self.mark_times.get(pos.symbol, 0):
            # The newest mark wins, whether risk's own book or execution's: a rebuilt history must not
            # keep the first mark it ever saw (weeks old) against today's positions.
            self.marks[pos.symbol] = pos.mark_price
            self.mark_times[pos.symbol] = t
        old, new = holding.qty, pos.quantity
        was_open, now_open = self.is_open(pos.symbol, old), self.is_open(pos.symbol, new)
        closed: TradeClosed | None = None
        if was_open and (not now_open or (old > 0) != (new > 0)):
            # The round trip ended (flat, or flipped through zero): its result feeds streak and cooldowns.
            pnl = holding.trade_pnl + report.realized_pnl_delta
            closed = TradeClosed(pos.symbol, pnl, t)
            self.last_exit_ns[pos.symbol] = max(self.last_exit_ns.get(pos.symbol, 0), t)
            if pnl < 0:
                self.loss_streak += 1
                self.last_loss_ns[pos.symbol] = max(self.last_loss_ns.get(pos.symbol, 0), t)
            elif pnl > 0:
                self.loss_streak = 0
            holding.trade_pnl = 0.0
            for key in [k for k, p in self.pending.items() if p.symbol == pos.symbol and p.exit and not now_open]:
                del self.pending[key]
        elif now_open:
            holding.trade_pnl += report.realized_pnl_delta
        holding.qty, holding.avg_price = new, pos.average_price
        return closed


def side_of(qty: float) -> int:
    return common_pb2.SIDE_BUY if qty > 0 else common_pb2.SIDE_SELL

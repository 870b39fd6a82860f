"""Risk's ledger as a RiskCheckpoint message and back (pure: no bus, keys or clock).

A checkpoint is the ledger after the execution reports before `report_offsets`; restoring it and folding in
the reports from those offsets on gives the ledger a full replay would (tests/unit/risk/test_checkpoint.py).
Explicit fields, never pickle: a checkpoint crosses a process boundary and is verified before it is used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from quantumedge.risk.domain.state import Holding, Pending, RiskLedger
from quantumedge.v1 import risk_pb2

# How many of the newest report ids and order keys a checkpoint keeps of the dedup windows: enough for the
# redeliveries a restart can see (one uncommitted batch, execution re-sending its last reports), small enough
# that the record stays under Kafka's 1 MB default (~40 bytes an id).
WINDOW_IDS = 5_000


def capture(
    ledger: RiskLedger,
    report_offsets: Mapping[int, int],
    *,
    time_ns: int,
    acknowledged_ns: int = 0,
    window_ids: int = WINDOW_IDS,
    order_horizon_ns: int = 0,
) -> risk_pb2.RiskCheckpoint:
    """The ledger as it stands, covering the reports before `report_offsets` (partition -> next offset).

    Order times older than `order_horizon_ns` before `time_ns` are left out (0 keeps all): the order-rate limit
    never counts them, and a week of them would not fit one record."""
    oldest = time_ns - order_horizon_ns if order_horizon_ns > 0 else None
    cp = risk_pb2.RiskCheckpoint(
        time_ns=time_ns,
        acknowledged_ns=acknowledged_ns,
        base=ledger.base,
        realized_total=ledger.realized_total,
        fees_total=ledger.fees_total,
        has_day=ledger.day is not None,
        day=ledger.day or 0,
        day_start_equity=ledger.day_start_equity,
        peak_equity=ledger.peak_equity,
        loss_streak=ledger.loss_streak,
        last_report_ns=ledger.last_report_ns,
        reports_seen=ledger.reports_seen,
        observed_reports=ledger.observed_reports,
        observed_notional=ledger.observed_notional,
        seen_reports=ledger._seen_reports.newest(window_ids),
        seen_orders=ledger._seen_orders.newest(window_ids),
        order_times_ns=[t for t in ledger._order_times if oldest is None or t > oldest],
    )
    cp.report_offsets.update({int(p): int(o) for p, o in report_offsets.items()})
    for symbol in sorted(ledger.holdings):
        h = ledger.holdings[symbol]
        cp.holdings.add(symbol=symbol, quantity=h.qty, average_price=h.avg_price, trade_pnl=h.trade_pnl)
    for symbol, price in ledger.marks.items():
        cp.marks[symbol].price = price
        cp.marks[symbol].time_ns = ledger.mark_times.get(symbol, 0)
    cp.last_loss_ns.update(ledger.last_loss_ns)
    cp.last_exit_ns.update(ledger.last_exit_ns)
    for p in ledger.pending.values():
        cp.pending.add(
            intent_id=p.intent_id,
            symbol=p.symbol,
            side=p.side,
            exit=p.exit,
            quantity=p.qty,
            price=p.price,
            created_ns=p.created_ns,
            acknowledged=p.acknowledged,
        )
    return cp


class InvalidCheckpointError(ValueError):
    """A checkpoint whose values no ledger could have held (signed or not, it is not restored)."""


def restore(ledger: RiskLedger, cp: risk_pb2.RiskCheckpoint) -> None:
    """Put the checkpoint's state into a fresh ledger (its settings, dedup size and dust rule kept)."""
    problem = invalid(cp)
    if problem:
        raise InvalidCheckpointError(problem)
    ledger.base, ledger.realized_total, ledger.fees_total = cp.base, cp.realized_total, cp.fees_total
    ledger.holdings = {h.symbol: Holding(h.quantity, h.average_price, h.trade_pnl) for h in cp.holdings}
    ledger.marks = {s: m.price for s, m in cp.marks.items()}
    ledger.mark_times = {s: m.time_ns for s, m in cp.marks.items()}
    ledger.day = cp.day if cp.has_day else None
    ledger.day_start_equity, ledger.peak_equity = cp.day_start_equity, cp.peak_equity
    ledger.loss_streak = cp.loss_streak
    ledger.last_loss_ns, ledger.last_exit_ns = dict(cp.last_loss_ns), dict(cp.last_exit_ns)
    ledger.last_report_ns, ledger.reports_seen = cp.last_report_ns, cp.reports_seen
    ledger.observed_reports, ledger.observed_notional = cp.observed_reports, cp.observed_notional
    ledger.pending = {
        p.intent_id: Pending(p.intent_id, p.symbol, p.side, p.exit, p.quantity, p.price, p.created_ns, p.acknowledged)
        for p in cp.pending
    }
    for key in cp.seen_reports:
        ledger._seen_reports.add(key)
    for key in cp.seen_orders:
        ledger._seen_orders.add(key)
    ledger._order_times.clear()
    ledger._order_times.extend(cp.order_times_ns)


def invalid(cp: risk_pb2.RiskCheckpoint) -> str:
    """Why the checkpoint cannot be restored ('' when it can): non-finite money, negative offsets or counts."""
    money = [cp.base, cp.realized_total, cp.fees_total, cp.day_start_equity, cp.peak_equity, cp.observed_notional]
    money += [v for h in cp.holdings for v in (h.quantity, h.average_price, h.trade_pnl)]
    money += [v for m in cp.marks.values() for v in (m.price,)]
    money += [v for p in cp.pending for v in (p.quantity, p.price)]
    if not all(math.isfinite(v) for v in money):
        return "a non-finite value"
    if any(o < 0 for o in cp.report_offsets.values()) or any(p < 0 for p in cp.report_offsets):
        return "a negative report offset"
    if min(cp.loss_streak, cp.reports_seen, cp.observed_reports) < 0:
        return "a negative count"
    return ""

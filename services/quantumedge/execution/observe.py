"""Observe-only execution (execution.mode=observe): what an approved decision would have done, sent nowhere.

Pure: no bus, no venue, no clock. The service keeps the touch per symbol from ingest.book.v1 and, for
each approved decision that passed the signature gate, publishes `observed_report(...)` instead of
placing an order. The report carries observed=true, the order that would have been sent and a
hypothetical fill at the touch (a buy at the best ask, a sell at the best bid, the whole quantity, the
taker fee), while `fill`, `position` and every PnL field stay empty: risk's ledger, the summaries and
any other reader of execution.reports.v1 can never take it for a real fill.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from quantumedge.execution.domain import ids
from quantumedge.v1 import common_pb2, execution_pb2, market_pb2, risk_pb2

VENUE_NAME = "observe"
NOTE = "observed: not sent to any venue; hypothetical fill at the touch"
# Why an approved decision got no hypothetical fill (reason codes in the report's note).
NO_TOUCH = "observed_no_touch"
BAD_QUANTITY = "observed_bad_quantity"


@dataclass(frozen=True)
class Touch:
    bid: float
    ask: float
    time_ns: int


class TouchBook:
    """The latest valid top of book per symbol (crossed, empty or non-finite quotes are not taken)."""

    def __init__(self) -> None:
        self._touch: dict[str, Touch] = {}

    def on_market(self, event: market_pb2.MarketEvent) -> None:
        if event.WhichOneof("payload") != "top_of_book":
            return
        tob = event.top_of_book
        bid, ask = tob.bid_price, tob.ask_price
        if not (math.isfinite(bid) and math.isfinite(ask)) or bid <= 0 or ask < bid:
            return
        self._touch[event.symbol] = Touch(bid, ask, event.exchange_time_ns or event.receive_time_ns)

    def get(self, symbol: str) -> Touch | None:
        return self._touch.get(symbol)


def is_observed(report: execution_pb2.ExecutionReport) -> bool:
    return report.observed


def observed_report(
    decision: risk_pb2.RiskDecision, touch: Touch | None, taker_fee_bps: float, now_ns: int
) -> execution_pb2.ExecutionReport:
    """The observed report of one approved decision: the order it would have made, filled at the touch."""
    intent = decision.intent
    exit_ = intent.kind == risk_pb2.INTENT_KIND_EXIT
    cid = ids.order_id(ids.EXIT if exit_ else ids.ENTRY, intent.intent_id or decision.decision_id)
    order = execution_pb2.Order(
        client_order_id=cid,
        intent_id=intent.intent_id,
        symbol=decision.symbol or intent.symbol,
        side=intent.side,
        order_type=intent.order_type,
        quantity=intent.quantity,
        price=intent.limit_price,
        time_in_force=intent.time_in_force,
        role=execution_pb2.ORDER_ROLE_EXIT if exit_ else execution_pb2.ORDER_ROLE_ENTRY,
        take_profit_price=intent.take_profit_price,
        stop_loss_price=intent.stop_loss_price,
        created_time_ns=now_ns,
        venue=VENUE_NAME,
    )
    report = execution_pb2.ExecutionReport(
        report_id=f"observed-{cid}",
        time_ns=now_ns,
        order=order,
        venue=VENUE_NAME,
        observed=True,
        note=NOTE,
    )
    qty = intent.quantity
    if not math.isfinite(qty) or qty <= 0:
        report.note = f"{BAD_QUANTITY}: quantity {qty!r}; no hypothetical fill"
        return report
    if touch is None:
        report.note = f"{NO_TOUCH}: no top of book for {order.symbol} yet; no hypothetical fill"
        return report
    price = touch.ask if intent.side == common_pb2.SIDE_BUY else touch.bid
    fee = price * qty * taker_fee_bps / 10_000.0
    report.hypothetical_fill.CopyFrom(
        execution_pb2.Fill(
            client_order_id=cid,
            trade_id=f"observed-{cid}",
            price=price,
            quantity=qty,
            fee=fee,
            fee_quote=fee,
            is_maker=False,
            time_ns=touch.time_ns or now_ns,
        )
    )
    return report

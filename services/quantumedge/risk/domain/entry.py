"""How an approved entry is priced and shaped: its reference price, order type, protection and time stop.

Pure (no I/O, no clock): the engine decides whether an entry may go and how big; this fills in the order.
"""

from __future__ import annotations

from quantumedge.risk.domain import policy
from quantumedge.risk.domain.market import SymbolMarket
from quantumedge.risk.settings import RiskSettings, SymbolFilter
from quantumedge.v1 import common_pb2, risk_pb2, signal_pb2

_MINUTE_NS = 60_000_000_000


def entry_reference(book: SymbolMarket, side: int, entry_order_type: str) -> float:
    """The price an entry will pay, so the caps hold after the fill: a taker pays the far touch (the ask for a
    BUY), a post-only maker its own side's (the bid for a BUY); the mid or mark when that touch is unknown."""
    maker = entry_order_type == "limit_maker"
    touch = book.ask if (side == common_pb2.SIDE_BUY) != maker else book.bid
    return touch or book.mid or book.mark


def shape_entry(
    intent: risk_pb2.OrderIntent,
    settings: RiskSettings,
    limits: risk_pb2.RiskLimits,
    filt: SymbolFilter,
    prediction: signal_pb2.HorizonPrediction | None,
) -> None:
    """Order type, limit price, take-profit/stop-loss, trailing stop and time stop of a sized entry (its side
    and reference_price already set)."""
    reference = intent.reference_price
    if settings.entry_order_type == "limit":
        intent.order_type = risk_pb2.ORDER_TYPE_LIMIT
        intent.time_in_force = risk_pb2.TimeInForce.Value(f"TIME_IN_FORCE_{settings.entry_time_in_force}")
        # Marketable limit at the touch: it fills now or (IOC) not at all, never worse than the quote.
        intent.limit_price = policy.round_to_tick(reference, filt.tick_size)
    elif settings.entry_order_type == "limit_maker":
        # Post-only at its own side's touch: it joins the queue there and pays the maker fee, or is refused.
        intent.order_type = risk_pb2.ORDER_TYPE_LIMIT_MAKER
        intent.limit_price = policy.round_to_tick(reference, filt.tick_size)
        intent.entry_ttl_ns = settings.entry_maker_ttl_ns
    else:
        intent.order_type = risk_pb2.ORDER_TYPE_MARKET
    intent.take_profit_price, intent.stop_loss_price = policy.protection(intent.side, reference, limits, filt.tick_size)
    intent.trailing_stop_bps = settings.trailing_stop_bps
    # The time stop is the horizon the entry was chosen on: the plan its label scored.
    intent.time_stop_ns = (
        prediction.horizon * _MINUTE_NS if prediction is not None and prediction.horizon > 0 else limits.time_stop_ns
    )


def entry_approval(
    symbol: str, side: int, sizing: policy.Sizing, prediction: signal_pb2.HorizonPrediction | None
) -> str:
    """The approved entry's reason line: what it buys, how big, what bound the size and the plan it follows."""
    plan = (
        f" on h{prediction.horizon} (expected {prediction.expected_return_bps:+.2f} bps)"
        if prediction is not None
        else ""
    )
    return (
        f"approved: entry {policy.SIDE_NAMES[side]} {sizing.quantity:g} {symbol}"
        f" notional {sizing.notional:.2f} sized by {sizing.binding}{plan}"
    )

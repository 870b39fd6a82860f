"""Rules of protection that need no engine state: bounds on protection times, when a filling entry's
protection grows, and which entries' protection an exit leaves to be placed again."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from quantumedge.execution.domain.orders import ZERO, Order, OrderRole, OrderStatus, OrderType, TimeInForce

# An approved time stop longer than this is capped to it: a week is longer than any horizon the strategy
# trades, and a deadline (venue now + time stop) stays far inside int64 nanoseconds (2^63 - 1 is 292 years).
MAX_TIME_STOP_NS = 7 * 24 * 3600 * 1_000_000_000
# An entry's resting time (entry_ttl_ns) is bounded the same way.
MAX_ENTRY_TTL_NS = MAX_TIME_STOP_NS

# Reason code of an entry persisted but never sent before a restart: refused so risk decides again.
NOT_SENT = "NOT_SENT"

PROTECTIVE = (OrderRole.TAKE_PROFIT, OrderRole.STOP_LOSS)


def bounded(duration_ns: int, cap_ns: int = MAX_TIME_STOP_NS) -> int:
    """A duration from an intent, never negative and never past `cap_ns`."""
    return min(max(0, int(duration_ns)), cap_ns)


def fills_while_resting(entry: Order) -> bool:
    """A resting (GTC) limit entry that has filled part: it is protected for what has filled so far."""
    return (
        entry.order_type is OrderType.LIMIT
        and entry.time_in_force is TimeInForce.GTC
        and entry.status is OrderStatus.PARTIALLY_FILLED
    )


def protectable(entry: Order) -> Decimal:
    """What an entry's own protection should cover: its fills less the commission taken in the base asset."""
    return max(ZERO, entry.filled_quantity - entry.base_fees)


def current_legs(entry: Order, orders: Iterable[Order], ids: tuple[str, str, str]) -> list[Order]:
    """The legs of the entry's current protection generation (`ids` = its protective ids)."""
    return [o for o in orders if o.client_order_id in ids[:2] and o.parent_client_order_id == entry.client_order_id]


def to_protect_again(symbol: str, orders: Iterable[Order]) -> Order | None:
    """The entry whose protection is placed again for what an exit left of the symbol: the latest protected
    entry (its targets are the most recent the strategy asked for)."""
    entries = [
        o
        for o in orders
        if o.symbol == symbol and o.role is OrderRole.ENTRY and o.protection_placed and o.filled_quantity > 0
    ]
    entries = [o for o in entries if o.take_profit_price or o.stop_loss_price or o.trailing_stop_bps]
    return max(entries, key=lambda o: (o.created_time_ns, o.client_order_id)) if entries else None

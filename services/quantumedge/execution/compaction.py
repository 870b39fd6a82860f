"""Which finished orders execution.state.v1 can forget, so the topic (and a restart) stays bounded.

The topic is compacted: the latest record per key is kept forever unless a tombstone deletes the key. An
order is forgotten (tombstoned and dropped from memory) once it is finished and older than a retention,
and nothing still needs it: every order of its family (the entry, its protective legs and exits) is
finished, no time stop or exit retry hangs on it, and it is not the entry whose targets would protect a
position again. The retention is far longer than any redelivery of the decision that made the order (a
redelivered intent finds its order by id and makes none), so forgetting never lets an order be sent twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal

from quantumedge.execution.domain.orders import Order

# A day: a decision is redelivered within seconds (the consumer group's uncommitted records), and the
# venue's own trade history answers queries about anything older.
DEFAULT_RETENTION_NS = 24 * 3600 * 1_000_000_000


def _family(order: Order) -> str:
    return order.parent_client_order_id or order.client_order_id


def forgettable(
    orders: Iterable[Order],
    now_ns: int,
    held: Callable[[str], Decimal],
    keep: Callable[[str], Order | None],
    retention_ns: int = DEFAULT_RETENTION_NS,
) -> list[str]:
    """Client order ids that can be tombstoned at `now_ns`. `held(symbol)` is the tradable position and
    `keep(symbol)` the entry that would protect it again (kept while the symbol is held)."""
    orders = list(orders)
    families: dict[str, list[Order]] = {}
    for order in orders:
        families.setdefault(_family(order), []).append(order)
    kept = {symbol: keep(symbol) for symbol in {o.symbol for o in orders} if held(symbol) != 0}
    out: list[str] = []
    for family_id, members in families.items():
        if any(_needed(o, now_ns, retention_ns) for o in members):
            continue
        entry = next((o for o in members if o.client_order_id == family_id), None)
        if entry is not None and any(k is entry for k in kept.values()):
            continue
        out.extend(sorted(o.client_order_id for o in members))
    return out


def _needed(order: Order, now_ns: int, retention_ns: int) -> bool:
    return (
        not order.status.terminal
        or order.time_stop_deadline_ns > 0
        or order.exit_retry_due_ns > 0
        or order.synthetic_credit > 0
        or now_ns - order.updated_time_ns < retention_ns
    )

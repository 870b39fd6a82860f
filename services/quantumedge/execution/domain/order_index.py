"""Which orders the engine's per-event work looks at: the open ones per symbol, entries with a time stop
armed, and open entries with an expiry. Kept current on every change of an order, so that work does not
grow with the history of finished orders. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable

from quantumedge.execution.domain.orders import Order, OrderRole


class OrderIndex:
    def __init__(self) -> None:
        self._open: dict[str, set[str]] = {}
        self._timed: set[str] = set()
        self._expiring: set[str] = set()

    def update(self, order: Order) -> None:
        """Follow one change of `order` (any field the indexes read: status, time stop, expiry)."""
        cid = order.client_order_id
        if order.is_open:
            self._open.setdefault(order.symbol, set()).add(cid)
        else:
            self._open.get(order.symbol, set()).discard(cid)
        _keep(self._timed, cid, order.role is OrderRole.ENTRY and bool(order.time_stop_deadline_ns))
        _keep(self._expiring, cid, order.is_open and order.role is OrderRole.ENTRY and bool(order.expire_time_ns))

    def forget(self, order: Order) -> None:
        """An order the engine no longer keeps (compacted)."""
        for index in (self._open.get(order.symbol, set()), self._timed, self._expiring):
            index.discard(order.client_order_id)

    def open_ids(self, symbol: str | None = None) -> set[str]:
        """Open orders of `symbol` (of every symbol for None); a copy, safe to keep while orders change."""
        if symbol is not None:
            return set(self._open.get(symbol, ()))
        return set().union(*self._open.values())

    def open_count(self, symbol: str) -> int:
        return len(self._open.get(symbol, ()))

    def timed(self) -> list[str]:
        """Entries whose time stop is armed (a copy)."""
        return list(self._timed)

    def expiring(self) -> Iterable[str]:
        """Open entries with an expiry."""
        return self._expiring


def _keep(index: set[str], cid: str, member: bool) -> None:
    if member:
        index.add(cid)
    else:
        index.discard(cid)

"""The engine hearing from the venue: order updates and fills applied once (by trade id), fills the venue
reports but we never saw fetched (or stood in for at its average price), and what each change sets off:
protection for a filled entry, time stops cleared, a position left naked closed.

A part of ExecutionEngine (engine.py) on the engine's state (engine_core.EngineCore); it calls its
siblings' _protect, _protection_vanished, _protection_failed and _protect_remainder.
"""

from __future__ import annotations

from quantumedge.execution.domain import protection
from quantumedge.execution.domain.orders import (
    ZERO,
    Fill,
    IllegalTransition,
    Order,
    OrderError,
    OrderRole,
    OrderSnapshot,
    OrderStatus,
    OrderUpdate,
)
from quantumedge.execution.engine_core import EngineCore, _fills_seen, log
from quantumedge.execution.errors import VenueError
from quantumedge.shared import bounds

_PROTECTIVE = protection.PROTECTIVE
_CLOSING = (OrderRole.EXIT, *_PROTECTIVE)


def fill_problem(fill: Fill) -> bounds.Problem | None:
    """The first bad value of a venue's fill (price, quantity, fees), or None."""
    return bounds.first(
        bounds.price("fill.price", fill.price),
        bounds.quantity("fill.quantity", fill.quantity),
        bounds.number("fill.fee", fill.fee, low=-bounds.MAX_MONEY, high=bounds.MAX_MONEY),
        bounds.money("fill.fee_quote", fill.fee_quote),
        bounds.quantity("fill.base_fee", fill.base_fee, optional=True),
    )


class UpdatesMixin(EngineCore):
    def _apply(self, update: OrderUpdate, note: str = "") -> None:
        order = self.orders.get(update.client_order_id)
        if order is None:
            self.counters["unknown_updates"] += 1
            log.info("update for an order we do not track", extra={"order": update.client_order_id})
            return
        note = note or update.note
        if update.venue_order_id and order.venue_order_id != update.venue_order_id:
            order.learn_venue_order_id(update.venue_order_id)
        if update.fill is not None:
            self._apply_fill(order, update.fill, note)
        if update.executed_quantity > order.filled_quantity:
            self._catch_up_fills(order, update)
        if update.status != order.status:
            if update.status is OrderStatus.REJECTED:
                order.note_reject(update.reject_code, update.reject_message)
            self._set_status(order, update.status, note, update.time_ns)
        self._after_change(order)

    def _apply_fill(self, order: Order, fill: Fill, note: str = "") -> None:
        problem = fill_problem(fill)
        if problem is not None:
            # A venue (or paper book) fill with a non-finite or absurd value never reaches the position.
            self.counters["refused_fills"] += 1
            log.error(
                "venue fill refused",
                extra={
                    "order": order.client_order_id,
                    "trade": fill.trade_id,
                    "code": problem.code,
                    "detail": problem.detail,
                },
            )
            return
        remaining = order.use_synthetic_credit(fill, self._clock)
        if remaining is None:
            log.info(
                "fill already counted by a reconciled stand-in",
                extra={"order": order.client_order_id, "trade": fill.trade_id},
            )
            self._persist(order)  # the credit used up, so a restart does not use it again
            return
        fill = remaining
        try:
            if not order.apply_fill(fill):
                return
        except OrderError as exc:
            log.error("inconsistent fill ignored", extra={"order": order.client_order_id, "error": str(exc)})
            return
        self.counters["fills"] += 1
        _fills_seen.add(1, {"venue": self.venue.name, "symbol": order.symbol})
        position = self._position(order.symbol)
        delta = position.apply_fill(order.side, fill)
        market = self.marks.get(order.symbol)
        if market and not position.flat:
            position.mark(market)  # the book's mid, not the price paid: unrealised is honest from the first report
        self._update_dust(position)
        self._emit(order, fill=fill, position=position, realized_delta=delta, fee_delta=fill.fee_quote, note=note)

    def _catch_up_fills(self, order: Order, update: OrderUpdate) -> None:
        """The venue reports more filled than we saw: fetch the missing fills (or, failing that, one
        synthetic fill at the venue's average price so quantities and positions stay true)."""
        snapshot = OrderSnapshot(
            order.client_order_id,
            order.symbol,
            order.side,
            order.order_type,
            update.status,
            order.quantity,
            update.executed_quantity,
            update.executed_quote,
            venue_order_id=order.venue_order_id or update.venue_order_id,
        )
        try:
            fills = self.venue.order_fills(snapshot)
        except VenueError as exc:
            log.warning("could not fetch missed fills", extra={"order": order.client_order_id, "error": str(exc)})
            fills = []
        for fill in fills:
            self._apply_fill(order, fill, note="reconciled: fill missed while away")
        missing = update.executed_quantity - order.filled_quantity
        if missing > 0:
            quote = update.executed_quote - order.filled_quote
            price = quote / missing if quote > 0 else (order.average_price or self.marks.get(order.symbol, ZERO))
            synthetic = Fill(
                order.client_order_id,
                f"recon:{order.client_order_id}:{update.executed_quantity}",
                price,
                missing,
                time_ns=update.time_ns,
            )
            self._apply_fill(
                order, synthetic, note="reconciled: venue reported fills we never saw (at its average price)"
            )
            order.add_synthetic_credit(missing, self._clock())
            self._persist(order)  # the credit survives a restart: those trades still arrive once

    def _set_status(self, order: Order, status: OrderStatus, note: str = "", time_ns: int = 0) -> None:
        try:
            changed = order.transition(status, time_ns or self._clock())
        except IllegalTransition:
            # Stale news (e.g. the stream's NEW after the response's FILLED): the newer state stands.
            log.debug("stale order update ignored", extra={"order": order.client_order_id, "status": status.name})
            return
        except OrderError as exc:
            log.warning(
                "order update inconsistent with fills", extra={"order": order.client_order_id, "error": str(exc)}
            )
            return
        if not changed:
            return
        if status is OrderStatus.REJECTED:
            self.counters["rejects"] += 1
        self._emit(order, note=note)

    def _after_change(self, order: Order) -> None:
        if not order.outcome_unknown:
            self.unknown.resolved(order.client_order_id)
        if self._needs_protection(order):
            self._protect(order)
            return
        parent = self.orders.get(order.parent_client_order_id) if order.parent_client_order_id else None
        if (
            parent is not None
            and order.role in _PROTECTIVE
            and order.status is OrderStatus.FILLED
            and parent.time_stop_deadline_ns
        ):
            # The entry's own target or stop closed it: its time stop has nothing left to close.
            parent.clear_time_stop(self._clock())
            self._emit(parent, note="closed by its protection: time stop cleared")
        if (
            parent is not None
            and order.role in _PROTECTIVE
            and order.status in (OrderStatus.EXPIRED, OrderStatus.REJECTED)
            and self._protection_vanished(parent)
        ):
            # Every leg is gone and none filled (never reached the venue, or refused after the fact): the
            # position would sit unprotected, so it is closed as its stop would have closed it.
            self._protection_failed(parent.client_order_id, f"protection {order.status.name.lower()}")
        if order.role is OrderRole.EXIT and order.status.terminal and self._held(order.symbol) != 0:
            self._protect_remainder(order.symbol, f"exit {order.client_order_id} {order.status.name.lower()}")
        if order.role in _CLOSING and order.status.terminal and self._held(order.symbol) == 0:
            # Flat: protection and time stops of this symbol have nothing left to protect.
            for entry in [self.orders[c] for c in self._indexes.timed()]:
                if entry.symbol == order.symbol and entry.time_stop_deadline_ns:
                    entry.clear_time_stop(self._clock())
                    self._emit(entry, note="position closed: time stop cleared")

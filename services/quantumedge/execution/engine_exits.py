"""The engine's ways out of a position: an entry's own exit at market (time stop, refused protection), the
operator's and a halt's cancel and flatten, and exit retries while an exit the venue could not take waits.

A part of ExecutionEngine (engine.py) on the engine's state (engine_core.EngineCore); it calls its
siblings' _send, _refuse, _apply, _set_status and _after_change.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from quantumedge.execution.domain import ids
from quantumedge.execution.domain.filters import FilterViolation, SymbolFilters
from quantumedge.execution.domain.orders import ZERO, Order, OrderRole, OrderStatus, OrderType, Side
from quantumedge.execution.engine_core import EngineCore, log
from quantumedge.execution.errors import OrderNotFound, VenueError


class ExitsMixin(EngineCore):
    def _exit(self, entry: Order, cid: str, note: str) -> None:
        if cid in self.orders:
            return
        held = self._held(entry.symbol)
        if held == 0:
            return
        # This entry's own unclosed quantity (its TP/SL may have closed part or all of it), and never more
        # than the position less the exits already working: another trade's holding is not ours to sell.
        closed_by_legs = sum(
            (o.filled_quantity for o in self.orders.values() if o.parent_client_order_id == entry.client_order_id),
            ZERO,
        )
        unclosed = entry.filled_quantity - entry.base_fees - closed_by_legs
        quantity = min(unclosed, self._closable(entry.symbol, exclude=cid))
        if quantity <= 0:
            return
        filters = self.venue.filters(entry.symbol)
        order = self._market_exit(
            cid,
            entry.symbol,
            filters.round_quantity(quantity, OrderType.MARKET),
            intent_id=entry.intent_id,
            parent_client_order_id=entry.client_order_id,
        )
        self._send_checked(order, filters, note)

    def _market_exit(self, cid: str, symbol: str, quantity: Decimal, **links: str) -> Order:
        """A market order that reduces the position in `symbol` (its side follows the position's sign)."""
        now = self._clock()
        return Order(
            cid,
            symbol,
            Side.SELL if self._held(symbol) > 0 else Side.BUY,
            OrderType.MARKET,
            quantity,
            role=OrderRole.EXIT,
            venue=self.venue.name,
            created_time_ns=now,
            updated_time_ns=now,
            **links,
        )

    def _send_checked(self, order: Order, filters: SymbolFilters, note: str) -> None:
        violation: FilterViolation | None = filters.check(
            order.order_type, order.quantity, order.price, reference_price=self.marks.get(order.symbol, ZERO)
        )
        self.orders[order.client_order_id] = order
        if violation is not None:
            self._refuse(order, violation.code, f"{violation.message} ({note})")
            return
        log.info("sending exit", extra={"order": order.client_order_id, "why": note})
        self._send(order)

    def _cancel_where(self, predicate: Callable[[Order], bool], note: str, operator: bool = False) -> int:
        canceled = 0
        now_ns = self.venue.now_ns()
        for order in [o for o in self._open_orders() if predicate(o)]:
            if not order.is_open:  # its OCO sibling's cancel closed it already
                continue
            try:
                with self._venue_span("venue cancel", order):
                    updates = self.venue.cancel(order.symbol, order.client_order_id)
            except OrderNotFound:
                if order.status is not OrderStatus.PENDING:
                    self._set_status(order, OrderStatus.CANCELED, f"{note}: venue no longer had it")
                elif operator and self.unknown.expired(order, now_ns):
                    self.unknown.resolved(order.client_order_id)
                    self._set_status(
                        order, OrderStatus.EXPIRED, f"{note}: outcome unknown past the bound, venue has no such order"
                    )
                    self._after_change(order)
                continue
            except VenueError as exc:
                log.warning("cancel failed", extra={"order": order.client_order_id, "error": str(exc)})
                continue
            for update in updates:
                self._apply(update, note=note)
            canceled += 1
            # Cancelling one OCO leg cancels its list; the answer may name only that leg, so ask about the rest.
            siblings = [o for o in self._open_orders(order.symbol) if order.group_id and o.group_id == order.group_id]
            for sibling in siblings:
                if sibling.is_open and sibling is not order:
                    self._refresh(sibling, note)
        return canceled

    def _refresh(self, order: Order, note: str) -> None:
        try:
            snapshot = self.venue.query(order.symbol, order.client_order_id)
        except VenueError as exc:
            log.warning("order query failed", extra={"order": order.client_order_id, "error": str(exc)})
            return
        if snapshot is not None:
            for update in self.venue.snapshot_updates(snapshot, note):
                self._apply(update, note=note)

    def _flatten(self, symbol: str | None, cause: str, note: str) -> int:
        sent = 0
        for sym, position in sorted(self.positions.items()):
            if (symbol and sym != symbol) or position.flat:
                continue
            self._cancel_where(lambda o, s=sym: o.symbol == s, note=note)
            cid = ids.order_id(ids.FLATTEN, cause, sym)
            if cid in self.orders:
                continue  # this flatten was done already (a redelivered halt)
            held = position.quantity
            filters = self.venue.filters(sym)
            # An exit the cancel could not stop (still being sent) sells its part itself.
            quantity = filters.round_quantity(self._closable(sym, exclude=cid), OrderType.MARKET)
            if quantity <= 0:
                log.info("position below the lot size; nothing to flatten", extra={"symbol": sym, "qty": str(held)})
                continue
            order = self._market_exit(cid, sym, quantity)
            self._send_checked(order, filters, note)
            if order.status is OrderStatus.REJECTED:
                # Protection is cancelled by now: a flatten that could not go (no price yet after a restart,
                # the venue away) keeps being tried while the position stands.
                self._schedule_exit_retry(order)
            sent += 1
        return sent

    def _set_exit_retry(self, symbol: str, schedule: tuple[str, int, int] | None) -> None:
        """Keep the symbol's exit retry schedule, persisted on the first failed exit so it survives a restart."""
        current = self._exit_retries.pop(symbol, None)
        if schedule is not None:
            self._exit_retries[symbol] = schedule
        origin = self.orders.get((schedule or current or ("",))[0])
        if origin is None:
            return
        attempts, due_ns = (schedule[1], schedule[2]) if schedule else (0, 0)
        origin.schedule_exit_retry(attempts, due_ns, self._clock())
        self._persist(origin)

    def _schedule_exit_retry(self, failed: Order, immediately: bool = False) -> None:
        origin, attempt, _ = self._exit_retries.get(failed.symbol, (failed.client_order_id, 0, 0))
        delay_ns = 0 if immediately else int(self._exit_backoff.delay(attempt) * 1e9)
        self._set_exit_retry(failed.symbol, (origin, attempt + 1, self.venue.now_ns() + delay_ns))
        log.error(
            "exit not placed; retrying",
            extra={"symbol": failed.symbol, "order": failed.client_order_id, "attempt": attempt + 1},
        )

    def _retry_exits(self, now_ns: int) -> None:
        for symbol, (origin, attempt, due_ns) in list(self._exit_retries.items()):
            if now_ns < due_ns:
                continue
            closable = self._closable(symbol)
            if self._held(symbol) == 0 or closable <= 0:
                self._set_exit_retry(symbol, None)  # closed meanwhile, or an exit is working on it
                continue
            filters = self.venue.filters(symbol)
            cid = ids.order_id(ids.EXIT, origin, f"retry-{attempt}")
            order = self._market_exit(cid, symbol, filters.round_quantity(closable, OrderType.MARKET))
            if order.client_order_id in self.orders:
                continue
            self._send_checked(order, filters, f"exit retry {attempt}")
            rescheduled = self._exit_retries.get(symbol, (origin, attempt, due_ns))[1] > attempt
            if order.status is not OrderStatus.REJECTED or not rescheduled:
                # Placed, or refused for good (filters, the venue's own rejection): retrying changes nothing.
                self._set_exit_retry(symbol, None)

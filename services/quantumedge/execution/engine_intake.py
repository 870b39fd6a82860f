"""The engine taking an approved intent: one order per intent id (a redelivery finds it), refused before it
is sent when execution is halted or reducing, the symbol takes exits only, the venue's filters or the hard
caps say no, or its protection is already off the market; persisted PENDING and flushed, then sent.

A part of ExecutionEngine (engine.py) on the engine's state (engine_core.EngineCore); it calls its
siblings' _apply, _cancel_where, _schedule_exit_retry, _outcome_unknown, _protection_room,
_protection_failed, _after_change and the facade's reducing.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from decimal import Decimal

from quantumedge.execution.convert import order_type_from_pb
from quantumedge.execution.domain import ids, protection
from quantumedge.execution.domain.filters import SymbolFilters
from quantumedge.execution.domain.orders import (
    ZERO,
    IllegalTransition,
    Order,
    OrderRequest,
    OrderRole,
    OrderType,
    Side,
    TimeInForce,
    dec,
)
from quantumedge.execution.engine_core import (
    CAP_ORDER_NOTIONAL,
    CAP_POSITION_NOTIONAL,
    PROTECTION_OFF_MARKET,
    EngineCore,
    _orders_sent,
    _refused,
    _tracer,
    _venue_ms,
    log,
)
from quantumedge.execution.errors import OutcomeUnknown, RateLimited, VenueError, VenueRejected, VenueUnavailable
from quantumedge.v1 import risk_pb2

_PROTECTIVE = protection.PROTECTIVE
_INTENT_ORDER_TYPES = (risk_pb2.ORDER_TYPE_MARKET, risk_pb2.ORDER_TYPE_LIMIT, risk_pb2.ORDER_TYPE_LIMIT_MAKER)


def protection_off_market(side: Side, tp: Decimal, sl: Decimal, mark: Decimal) -> str:
    """Why an entry's take-profit or stop is already on the wrong side of the market ("" when it is not).

    Risk prices them from its own view of the book; when that view lags the market, a long's target can
    sit below the price it fills at. The venue refuses such an OCO (-2010) and the position would be
    closed at market at once: a loss by construction, so the entry is not sent."""
    if mark <= 0:
        return ""
    buy = side is Side.BUY
    if tp and (tp <= mark if buy else tp >= mark):
        return f"take-profit {tp} is already {'below' if buy else 'above'} the market {mark}"
    if sl and (sl >= mark if buy else sl <= mark):
        return f"stop {sl} is already {'above' if buy else 'below'} the market {mark}"
    return ""


def _intent_problem(intent: risk_pb2.OrderIntent) -> str:
    if not intent.symbol:
        return "no symbol"
    if intent.side not in (Side.BUY, Side.SELL):
        return "side unspecified"
    if intent.order_type not in _INTENT_ORDER_TYPES:
        return "order type unspecified"
    numbers = (intent.quantity, intent.limit_price, intent.take_profit_price, intent.stop_loss_price)
    if not all(math.isfinite(x) and x >= 0 for x in (*numbers, intent.trailing_stop_bps, intent.reference_price)):
        return "a quantity or price is negative or not a number"
    if intent.kind != risk_pb2.INTENT_KIND_EXIT and intent.quantity <= 0:
        return "entry without a quantity"
    if intent.order_type != risk_pb2.ORDER_TYPE_MARKET and intent.limit_price <= 0:
        return "limit order without a limit price"
    return ""


class IntakeMixin(EngineCore):
    def _on_intent(self, intent: risk_pb2.OrderIntent) -> Order | None:
        is_exit = intent.kind == risk_pb2.INTENT_KIND_EXIT
        cid = ids.order_id(ids.EXIT if is_exit else ids.ENTRY, intent.intent_id)
        if cid in self.orders and self.orders[cid].awaiting_send:
            log.info("intent delivered again after an outage; sending its order", extra={"order": cid})
            self._send(self.orders[cid])
            return self.orders[cid]
        if cid in self.orders:
            self.counters["duplicates_ignored"] += 1
            log.info("intent already handled; no second order", extra={"intent": intent.intent_id, "order": cid})
            return self.orders[cid]
        problem = _intent_problem(intent)
        if problem:
            self.counters["ignored_decisions"] += 1
            log.error("approved intent is unusable; ignored", extra={"intent": intent.intent_id, "problem": problem})
            return None
        order = self._order_of(intent, cid, is_exit)
        self.orders[cid] = order
        refusal = self._intake_refusal(order, intent)
        if refusal is not None:
            return self._refuse(order, *refusal)
        self._send(order)
        return order

    def _order_of(self, intent: risk_pb2.OrderIntent, cid: str, is_exit: bool) -> Order:
        """The order an intent asks for, as asked (sized to the venue's filters later); an entry carries its
        protection."""
        order_type, post_only = order_type_from_pb(intent.order_type)
        tif = TimeInForce(intent.time_in_force)
        if order_type is OrderType.LIMIT and (tif is TimeInForce.UNSPECIFIED or post_only):
            tif = TimeInForce.GTC  # LIMIT_MAKER takes no time in force: it rests until filled or cancelled
        created = self._clock()
        expire_ns = 0
        if not is_exit and intent.entry_ttl_ns > 0 and order_type is OrderType.LIMIT:
            # On the venue's clock (market time for paper), like the time stop.
            expire_ns = self.venue.now_ns() + protection.bounded(intent.entry_ttl_ns, protection.MAX_ENTRY_TTL_NS)
        protect = not is_exit  # an exit asks for no protection, whatever its intent carries
        return Order(
            client_order_id=cid,
            symbol=intent.symbol,
            side=Side(intent.side),
            order_type=order_type,
            quantity=dec(intent.quantity),
            price=dec(intent.limit_price) if order_type is OrderType.LIMIT else ZERO,
            time_in_force=tif if order_type is OrderType.LIMIT else TimeInForce.UNSPECIFIED,
            role=OrderRole.EXIT if is_exit else OrderRole.ENTRY,
            post_only=post_only,
            intent_id=intent.intent_id,
            venue=self.venue.name,
            created_time_ns=created,
            updated_time_ns=created,
            take_profit_price=dec(intent.take_profit_price) if protect else ZERO,
            stop_loss_price=dec(intent.stop_loss_price) if protect else ZERO,
            trailing_stop_bps=dec(intent.trailing_stop_bps) if protect else ZERO,
            # Bounded: an approved 2^63-1 would overflow the deadline and leave the position unprotected.
            time_stop_ns=protection.bounded(intent.time_stop_ns) if protect else 0,
            expire_time_ns=expire_ns,
        )

    def _intake_refusal(self, order: Order, intent: risk_pb2.OrderIntent) -> tuple[str, str] | None:
        """(code, message) when the new order is not to be sent; on the way it is fitted to the venue's
        filters and an exit is sized to what it can close (its protection cancelled for it)."""
        is_exit = order.role is OrderRole.EXIT
        refusal = None if is_exit else self._entry_refused_by_state(order)
        if refusal is not None:
            return refusal
        try:
            filters = self.venue.filters(order.symbol)
        except VenueError as exc:
            return exc.code, exc.message
        refusal = self._exit_sized(order) if is_exit else None
        if refusal is None:
            refusal = self._filters_refusal(order, intent, filters)
        if refusal is None and not is_exit:
            refusal = self._entry_refused_by_price(order, intent)
        if refusal is None and is_exit:
            refusal = self._exit_clears_protection(order, filters)
        return refusal

    def _entry_refused_by_state(self, order: Order) -> tuple[str, str] | None:
        if self.halted:
            return "HALTED", f"execution is halted ({self.halt_reason}): no new entries"
        if self.reducing(order.symbol):
            return "REDUCING", f"{self.reducing(order.symbol)}: no new entries"
        reason = self.unknown.exits_only(self._open_orders(order.symbol), self.venue.now_ns()).get(order.symbol)
        if reason:
            return "EXITS_ONLY", f"{order.symbol} takes exits only ({reason}): no new entries"
        return None

    def _exit_sized(self, order: Order) -> tuple[str, str] | None:
        """An exit sized to the position less the exits already working on it (all of it when unsized)."""
        held = self._held(order.symbol)
        if held == 0 or (held > 0) == (order.side is Side.BUY):
            return "NO_POSITION", f"nothing to exit in {order.symbol} (position {held})"
        closable = self._closable(order.symbol, exclude=order.client_order_id)
        if closable <= 0:
            return "NO_POSITION", f"{order.symbol} position {held} is already being closed by working exits"
        order.resize(min(order.quantity or closable, closable))
        return None

    def _filters_refusal(
        self, order: Order, intent: risk_pb2.OrderIntent, filters: SymbolFilters
    ) -> tuple[str, str] | None:
        """Rounded to the venue's steps (a limit away from the market), then checked against its filters and,
        for an entry, whether its protection will fit the symbol's open-order limits."""
        price = filters.round_price(order.price, "down" if order.side is Side.BUY else "up") if order.price else None
        order.resize(filters.round_quantity(order.quantity, order.order_type), price)
        violation = filters.check(
            order.order_type,
            order.quantity,
            order.price,
            reference_price=dec(intent.reference_price) or self.marks.get(order.symbol, ZERO),
            open_orders=self._open_count(order.symbol),
            side=order.side,
            average_price=self.venue.average_price(order.symbol) if order.price else ZERO,
        ) or (None if order.role is OrderRole.EXIT else self._protection_room(order, filters))
        return None if violation is None else (violation.code, violation.message)

    def _entry_refused_by_price(self, order: Order, intent: risk_pb2.OrderIntent) -> tuple[str, str] | None:
        over = self._over_cap(order, dec(intent.reference_price) or self.marks.get(order.symbol, ZERO))
        if over is not None:
            return over
        off = protection_off_market(
            order.side, order.take_profit_price, order.stop_loss_price, self.marks.get(order.symbol, ZERO)
        )
        return (PROTECTION_OFF_MARKET, off) if off else None

    def _exit_clears_protection(self, order: Order, filters: SymbolFilters) -> tuple[str, str] | None:
        """Protective orders reserve the balance the exit needs: they go first (only for an exit that can go)."""
        self._cancel_where(
            lambda o: o.symbol == order.symbol and o.role in _PROTECTIVE, note="exit replaces protection"
        )
        # A cancel can find a leg already filled: size again on what is left, never on what was.
        closable = self._closable(order.symbol, exclude=order.client_order_id)
        order.resize(filters.round_quantity(min(order.quantity, closable), order.order_type))
        if order.quantity <= 0:
            return "NO_POSITION", f"{order.symbol} was closed while its protection was cancelled"
        return None

    def _over_cap(self, order: Order, reference: Decimal) -> tuple[str, str] | None:
        """(code, message) when an entry breaks a hard cap. Valued at the dearer of its limit and the market, so
        a limit far from the market cannot hide its size; working entries on the symbol count as held."""
        cfg = self.config
        if not (cfg.max_order_notional or cfg.max_position_notional):
            return None
        price = max(order.price, reference)
        if price <= 0:
            return CAP_ORDER_NOTIONAL, f"no price for {order.symbol} to check execution's hard caps against"
        notional = order.quantity * price
        if cfg.max_order_notional and notional > cfg.max_order_notional:
            return CAP_ORDER_NOTIONAL, f"order notional {notional:.2f} over execution's cap {cfg.max_order_notional}"
        working = sum(
            (
                (o.quantity - o.filled_quantity) * (1 if o.side is Side.BUY else -1)
                for o in self._open_orders(order.symbol)
                if o.role is OrderRole.ENTRY and o.client_order_id != order.client_order_id
            ),
            ZERO,
        )
        signed = order.quantity if order.side is Side.BUY else -order.quantity
        after = abs(self._held(order.symbol) + working + signed) * price
        if cfg.max_position_notional and after > cfg.max_position_notional:
            cap = cfg.max_position_notional
            return CAP_POSITION_NOTIONAL, f"{order.symbol} position would be {after:.2f}, over execution's cap {cap}"
        return None

    def _refuse(self, order: Order, code: str, message: str) -> Order:
        """Record an order that was never sent, so the refusal is explained and a redelivery finds it."""
        order.reject(code, message, self._clock())
        self.counters["rejects"] += 1
        _refused.add(1, {"venue": self.venue.name, "code": code})
        log.warning(
            "order refused before sending", extra={"order": order.client_order_id, "code": code, "reason": message}
        )
        self._emit(order, note=f"refused: {message}")
        return order

    def _send(self, order: Order) -> None:
        self.orders[order.client_order_id] = order
        order.sending(self.venue.now_ns() // 1_000_000, self._clock())
        self._emit(order, note="sending")
        # Durable before it leaves: after a crash the PENDING order is queried, never sent again.
        try:
            self.emitter.flush()
        except Exception:
            # Not durable, so not sent. A broker outage: the consumer loop waits it out and delivers the intent
            # again, which sends this order; otherwise a restart finds it PENDING and resolves it as never sent.
            order.unsent = True
            raise
        order.unsent = False
        try:
            with self._venue_span("venue submit", order):
                updates = self.venue.submit(OrderRequest.of(order))
        except VenueRejected as exc:
            self._rejected(order, exc.code, exc.message)
            return
        except (VenueUnavailable, RateLimited) as exc:
            if order.role is OrderRole.EXIT:
                # Its protection is already gone: an exit the venue could not take now is tried again.
                self._schedule_exit_retry(order)
            self._rejected(order, exc.code, f"not placed: {exc.message}")
            return
        except OutcomeUnknown as exc:
            self._outcome_unknown(order, exc)
            return
        self.counters["orders_placed"] += 1
        _orders_sent.add(1, {"venue": self.venue.name, "role": order.role.name})
        for update in updates:
            self._apply(update)

    @contextlib.contextmanager
    def _venue_span(self, name: str, order: Order) -> Iterator[None]:
        """A span around one venue call, child of the record being handled, so a trace reaches the venue."""
        started = time.perf_counter()
        with _tracer.start_as_current_span(name) as span:
            span.set_attribute("qe.client_order_id", order.client_order_id)
            span.set_attribute("qe.symbol", order.symbol)
            span.set_attribute("qe.venue", self.venue.name)
            try:
                yield
            finally:
                _venue_ms.record((time.perf_counter() - started) * 1000, {"venue": self.venue.name, "call": name})

    def _rejected(self, order: Order, code: str, message: str) -> None:
        try:
            order.reject(code, message, self._clock())
        except IllegalTransition:
            return
        self.counters["rejects"] += 1
        _refused.add(1, {"venue": self.venue.name, "code": code})
        log.warning("order rejected", extra={"order": order.client_order_id, "code": code, "reason": message})
        self._emit(order, note=f"rejected: {code} {message}")
        if order.role in _PROTECTIVE and order.parent_client_order_id:
            self._protection_failed(order.parent_client_order_id, f"{code} {message}")
        elif order.role is OrderRole.EXIT:
            self._after_change(order)  # its protection may be gone: what is held is protected again

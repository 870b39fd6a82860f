"""The execution engine: approved intents in, orders on a venue, order/position state and reports out.

It owns no I/O of its own: the venue and the emitter are injected, so the service runs it on a bus
with a real venue and the backtester runs it with the paper venue and a list. Rules it keeps:
- only an approved decision with an intent is traded; its client order id derives from the intent id,
  so a redelivered intent finds its order and makes none;
- an order is persisted (and flushed) as PENDING before it is sent, so a crash between sending and
  hearing back is resolved on restart by querying the venue, never by sending again;
- fills are applied once (by trade id) and a venue's FILLED is never believed without the fills;
- every entry gets its protection once it is done filling: TP/SL as one OCO, a trailing stop, a time stop;
- its own hard caps hold whatever was approved: an entry over the order or position notional cap is refused
  (reject_code CAP_ORDER_NOTIONAL / CAP_POSITION_NOTIONAL) and reported, so risk learns of it.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from decimal import Decimal

from quantumedge.execution import ids, protection
from quantumedge.execution.convert import (
    order_type_from_pb,
)
from quantumedge.execution.engine_core import (
    CAP_ORDER_NOTIONAL,
    CAP_POSITION_NOTIONAL,
    POSITION_KEY,
    PROTECTION_OFF_MARKET,
    Emitter,
    EngineConfig,
    ListEmitter,
    _orders_sent,
    _refused,
    _tracer,
    _venue_ms,
    log,
)
from quantumedge.execution.engine_exits import ExitsMixin
from quantumedge.execution.engine_protection import ProtectionMixin
from quantumedge.execution.engine_recovery import RecoveryMixin
from quantumedge.execution.engine_updates import UpdatesMixin, fill_problem
from quantumedge.execution.errors import (
    OutcomeUnknown,
    RateLimited,
    VenueError,
    VenueRejected,
    VenueUnavailable,
)
from quantumedge.execution.orders import (
    ZERO,
    IllegalTransition,
    Order,
    OrderRequest,
    OrderRole,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    dec,
)
from quantumedge.execution.positions import Position
from quantumedge.shared import bounds
from quantumedge.v1 import control_pb2, execution_pb2, market_pb2, risk_pb2

__all__ = [
    "CAP_ORDER_NOTIONAL",
    "CAP_POSITION_NOTIONAL",
    "POSITION_KEY",
    "PROTECTION_OFF_MARKET",
    "Emitter",
    "EngineConfig",
    "ExecutionEngine",
    "ListEmitter",
    "fill_problem",
    "protection_off_market",
]


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


class ExecutionEngine(UpdatesMixin, ProtectionMixin, ExitsMixin, RecoveryMixin):
    # -- inputs -----------------------------------------------------------------------------------
    def on_decision(self, decision: risk_pb2.RiskDecision) -> Order | None:
        """Trade an approved decision's intent; anything else is ignored (execution never trades on its own)."""
        with self._lock:
            if not decision.approved or not decision.HasField("intent") or not decision.intent.intent_id:
                self.counters["ignored_decisions"] += 1
                return None
            self.counters["intents_received"] += 1
            return self._on_intent(decision.intent)

    def refuse_decision(self, decision: risk_pb2.RiskDecision, code: str, message: str) -> Order | None:
        """An approved entry the decision gate refused after its signature verified (too old, values out of
        bounds): recorded as a REJECTED order under its intent id and reported, never sent, so risk's ledger
        releases the pending entry at once instead of after its TTL, and a redelivery finds it handled.
        Exits, intents without an id or a side get nothing: there is no entry to release or none to name."""
        intent = decision.intent
        if not decision.approved or not intent.intent_id or intent.kind == risk_pb2.INTENT_KIND_EXIT:
            return None
        if intent.side not in (Side.BUY, Side.SELL):
            return None
        cid = ids.order_id(ids.ENTRY, intent.intent_id)
        # The report must pass risk's own bounds check, or the release would be dead-lettered: a bad size reads 0.
        qty = intent.quantity if bounds.quantity("intent.quantity", intent.quantity) is None else 0.0
        with self._lock:
            if cid in self.orders:
                return self.orders[cid]
            order = Order(
                client_order_id=cid,
                symbol=intent.symbol or decision.symbol,
                side=Side(intent.side),
                order_type=OrderType.MARKET,
                quantity=dec(qty),  # for the record only: it is never sent
                intent_id=intent.intent_id,
                venue=self.venue.name,
                created_time_ns=self._clock(),
            )
            order.updated_time_ns = order.created_time_ns
            self.orders[cid] = order
            self.counters["intents_received"] += 1
            return self._refuse(order, code, message)

    def handled(self, decision: risk_pb2.RiskDecision) -> bool:
        """This decision's intent already has an order (placed, working, done or refused)."""
        intent_id = decision.intent.intent_id
        with self._lock:
            return bool(intent_id) and any(ids.order_id(k, intent_id) in self.orders for k in (ids.ENTRY, ids.EXIT))

    def on_update(self, update: OrderUpdate) -> None:
        """An update the venue pushed (user data stream)."""
        with self._lock:
            self._apply(update)

    def on_market(self, event: market_pb2.MarketEvent) -> None:
        """Marks for PnL, paper fills, and time stops (on the market's clock)."""
        with self._lock:
            for update in self.venue.on_market(event):
                self._apply(update)
            self._record_ratchets(event.symbol)
            for cid in [c for c in self._awaiting_protection if self.orders[c].symbol == event.symbol]:
                self._awaiting_protection.discard(cid)
                if self._needs_protection(self.orders[cid]):
                    self._protect(self.orders[cid])
            price = _mark_price(event)
            if price:
                self.marks[event.symbol] = price
                self._mark(event.symbol, price, event.exchange_time_ns or event.receive_time_ns)
            self.check_time_stops(self.venue.now_ns())

    def on_clock(self, now_ns: int) -> None:
        """The market's clock moved with no event (a backtest's strategy acting between two events)."""
        with self._lock:
            for update in self.venue.advance(now_ns):
                self._apply(update)
            self.check_time_stops(self.venue.now_ns())

    def on_halt(self, halt: control_pb2.HaltState, cause: str, reason: str = "") -> None:
        """Halt: no new entries; cancel open entry orders; flatten when asked. Resume lifts the first."""
        with self._lock:
            self.halted = halt.halted
            self.halt_reason = reason or halt.limit
            if not halt.halted:
                log.info("execution resumed", extra={"cause": cause})
                return
            log.warning("execution halted", extra={"cause": cause, "reason": self.halt_reason})
            if halt.cancel_open_orders or halt.flatten:
                self._cancel_where(lambda o: o.role is OrderRole.ENTRY, note=f"halt: {self.halt_reason}")
            if halt.flatten:
                self._flatten(None, cause or "halt", note=f"halt: {self.halt_reason}")

    def on_trading_state(self, state: risk_pb2.SymbolTradingState) -> None:
        """One scope's state from risk: REDUCING refuses new entries in it; exits and protection go on."""
        with self._lock:
            self.trading_states[state.symbol] = state

    def reducing(self, symbol: str) -> str:
        """Why `symbol` (or the whole account) is REDUCING, "" when it is not."""
        for scope in (symbol, ""):
            st = self.trading_states.get(scope)
            if st is not None and st.state != risk_pb2.TRADING_STATE_ACTIVE:
                return f"{scope or 'the account'} is REDUCING ({st.reason_code}: {st.detail})"
        return ""

    # -- operator actions -------------------------------------------------------------------------
    def cancel_all(self, symbol: str = "", reason: str = "") -> int:
        """The operator's cancel. An order whose outcome stayed unknown past the bound is cancelled by its
        client order id too; when the matching engine answers that it has no such order, the operator's
        call closes it (EXPIRED), which lifts the symbol's exits-only state."""
        with self._lock:
            return self._cancel_where(
                lambda o: not symbol or o.symbol == symbol, note=f"cancel all: {reason}", operator=True
            )

    def flatten(self, symbol: str = "", reason: str = "", cause: str = "") -> int:
        with self._lock:
            return self._flatten(symbol or None, cause or f"flatten-{self._clock()}", note=f"flatten: {reason}")

    # -- queries ----------------------------------------------------------------------------------
    def list_orders(self, symbol: str = "", open_only: bool = False) -> list[Order]:
        with self._lock:
            return [
                o
                for o in sorted(self.orders.values(), key=lambda o: (o.created_time_ns, o.client_order_id))
                if (not symbol or o.symbol == symbol) and (not open_only or o.is_open)
            ]

    def list_positions(self) -> list[Position]:
        with self._lock:
            return [p for _, p in sorted(self.positions.items())]

    def status(self) -> execution_pb2.ExecutionServiceGetStatusResponse:
        with self._lock:
            c = self.counters
            return execution_pb2.ExecutionServiceGetStatusResponse(
                venue=self.venue.name,
                halted=self.halted,
                intents_received=c["intents_received"],
                orders_placed=c["orders_placed"],
                fills=c["fills"],
                rejects=c["rejects"],
                open_orders=sum(1 for o in self.orders.values() if o.is_open),
                realized_pnl=float(sum((p.realized_pnl for p in self.positions.values()), ZERO)),
                unrealized_pnl=float(sum((p.unrealized_pnl for p in self.positions.values()), ZERO)),
                equity=float(self.equity()),
                fees=float(sum((p.fees for p in self.positions.values()), ZERO)),
                duplicates_ignored=c["duplicates_ignored"],
                reconciled_differences=c["reconciled_differences"],
                pending_orders=sum(1 for o in self.orders.values() if o.status is OrderStatus.PENDING),
                venue_connected=self.venue.connected,
                exits_only=[f"{s}:{r}" for s, r in sorted(self.exits_only().items())],
                unknown_outcome_orders=sum(1 for o in self._open_orders() if o.outcome_unknown),
                trading_states=[st for _, st in sorted(self.trading_states.items())],
            )

    def exits_only(self) -> dict[str, str]:
        """Symbols that take no new entries, with the reason code (an order unknown past the bound)."""
        with self._lock:
            return self.unknown.exits_only(self._open_orders(), self.venue.now_ns())

    # -- recovery ---------------------------------------------------------------------------------
    def heartbeat(self, note: str = "heartbeat") -> None:
        """A position report per symbol: tells risk that execution is alive and what it holds."""
        with self._lock:
            for symbol in sorted(set(self.config.symbols) | set(self.positions)):
                self._emit(position=self._position(symbol), note=note, persist=False)

    def check_time_stops(self, now_ns: int) -> None:
        with self._lock:
            self._retry_exits(now_ns)
            for cid in list(self._timed):
                entry = self.orders[cid]
                if entry.time_stop_deadline_ns and entry.time_stop_deadline_ns <= now_ns:
                    self._time_stop(entry)
            # A PENDING one is resolved first: only an order the venue acknowledged can be cancelled there.
            due = {
                c
                for c in self._expiring
                if self.orders[c].expire_time_ns <= now_ns and self.orders[c].status is not OrderStatus.PENDING
            }
            if due:
                self._cancel_where(lambda o: o.client_order_id in due, note="resting entry expired unfilled")

    # -- intent -> order --------------------------------------------------------------------------
    def _on_intent(self, intent: risk_pb2.OrderIntent) -> Order | None:
        is_exit = intent.kind == risk_pb2.INTENT_KIND_EXIT
        cid = ids.order_id(ids.EXIT if is_exit else ids.ENTRY, intent.intent_id)
        if cid in self.orders:
            self.counters["duplicates_ignored"] += 1
            log.info("intent already handled; no second order", extra={"intent": intent.intent_id, "order": cid})
            return self.orders[cid]
        problem = _intent_problem(intent)
        if problem:
            self.counters["ignored_decisions"] += 1
            log.error("approved intent is unusable; ignored", extra={"intent": intent.intent_id, "problem": problem})
            return None
        order_type, post_only = order_type_from_pb(intent.order_type)
        tif = TimeInForce(intent.time_in_force)
        if order_type is OrderType.LIMIT and (tif is TimeInForce.UNSPECIFIED or post_only):
            tif = TimeInForce.GTC  # LIMIT_MAKER takes no time in force: it rests until filled or cancelled
        order = Order(
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
            created_time_ns=self._clock(),
        )
        if not is_exit:
            order.take_profit_price = dec(intent.take_profit_price)
            order.stop_loss_price = dec(intent.stop_loss_price)
            order.trailing_stop_bps = dec(intent.trailing_stop_bps)
            # Bounded: an approved 2^63-1 would overflow the deadline and leave the position unprotected.
            order.time_stop_ns = protection.bounded(intent.time_stop_ns)
            if intent.entry_ttl_ns > 0 and order_type is OrderType.LIMIT:
                # On the venue's clock (market time for paper), like the time stop.
                ttl = protection.bounded(intent.entry_ttl_ns, protection.MAX_ENTRY_TTL_NS)
                order.expire_time_ns = self.venue.now_ns() + ttl
        order.updated_time_ns = order.created_time_ns
        self.orders[cid] = order
        if not is_exit and self.halted:
            return self._refuse(order, "HALTED", f"execution is halted ({self.halt_reason}): no new entries")
        if not is_exit and self.reducing(order.symbol):
            return self._refuse(order, "REDUCING", f"{self.reducing(order.symbol)}: no new entries")
        reason = self.unknown.exits_only(self._open_orders(order.symbol), self.venue.now_ns()).get(order.symbol)
        if not is_exit and reason:
            return self._refuse(order, "EXITS_ONLY", f"{order.symbol} takes exits only ({reason}): no new entries")
        try:
            filters = self.venue.filters(order.symbol)
        except VenueError as exc:
            return self._refuse(order, exc.code, exc.message)
        if is_exit:
            held = self._held(order.symbol)
            if held == 0 or (held > 0) == (order.side is Side.BUY):
                return self._refuse(order, "NO_POSITION", f"nothing to exit in {order.symbol} (position {held})")
            closable = self._closable(order.symbol, exclude=cid)
            if closable <= 0:
                return self._refuse(
                    order, "NO_POSITION", f"{order.symbol} position {held} is already being closed by working exits"
                )
            order.quantity = min(order.quantity or closable, closable)
        order.quantity = filters.round_quantity(order.quantity, order_type)
        if order.price:
            order.price = filters.round_price(order.price, "down" if order.side is Side.BUY else "up")
        violation = filters.check(
            order_type,
            order.quantity,
            order.price,
            reference_price=dec(intent.reference_price) or self.marks.get(order.symbol, ZERO),
            open_orders=self._open_count(order.symbol),
            side=order.side,
            average_price=self.venue.average_price(order.symbol) if order.price else ZERO,
        ) or (None if is_exit else self._protection_room(order, filters))
        if violation is not None:
            return self._refuse(order, violation.code, violation.message)
        if not is_exit:
            over = self._over_cap(order, dec(intent.reference_price) or self.marks.get(order.symbol, ZERO))
            if over is not None:
                return self._refuse(order, *over)
            off = protection_off_market(
                order.side, order.take_profit_price, order.stop_loss_price, self.marks.get(order.symbol, ZERO)
            )
            if off:
                return self._refuse(order, PROTECTION_OFF_MARKET, off)
        if is_exit:
            # Protective orders reserve the balance the exit needs: they go first (only for an exit that can go).
            self._cancel_where(
                lambda o: o.symbol == order.symbol and o.role in _PROTECTIVE, note="exit replaces protection"
            )
            # A cancel can find a leg already filled: size again on what is left, never on what was.
            closable = self._closable(order.symbol, exclude=cid)
            order.quantity = filters.round_quantity(min(order.quantity, closable), order_type)
            if order.quantity <= 0:
                return self._refuse(
                    order, "NO_POSITION", f"{order.symbol} was closed while its protection was cancelled"
                )
        self._send(order)
        return order

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
        order.sent_time_ms = self.venue.now_ns() // 1_000_000
        order._touch(self._clock())
        self._emit(order, note="sending")
        # Durable before it leaves: after a crash the PENDING order is queried, never sent again.
        self.emitter.flush()
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

    # -- venue updates ----------------------------------------------------------------------------
    # -- protection -------------------------------------------------------------------------------
    # -- cancel / flatten -------------------------------------------------------------------------
    # -- reconciliation ---------------------------------------------------------------------------
    # -- helpers ----------------------------------------------------------------------------------


_PROTECTIVE = (OrderRole.TAKE_PROFIT, OrderRole.STOP_LOSS)
_INTENT_ORDER_TYPES = (risk_pb2.ORDER_TYPE_MARKET, risk_pb2.ORDER_TYPE_LIMIT, risk_pb2.ORDER_TYPE_LIMIT_MAKER)
_CLOSING = (OrderRole.EXIT, OrderRole.TAKE_PROFIT, OrderRole.STOP_LOSS)


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


def _mark_price(event: market_pb2.MarketEvent) -> Decimal:
    kind = event.WhichOneof("payload")
    if kind == "trade":
        return dec(event.trade.price)
    if kind == "top_of_book" and event.top_of_book.bid_price and event.top_of_book.ask_price:
        return (dec(event.top_of_book.bid_price) + dec(event.top_of_book.ask_price)) / 2
    if kind == "depth" and event.depth.bids and event.depth.asks:
        return (dec(event.depth.bids[0].price) + dec(event.depth.asks[0].price)) / 2
    return ZERO

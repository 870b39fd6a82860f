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

from decimal import Decimal

from quantumedge.execution.domain import ids
from quantumedge.execution.domain.orders import (
    ZERO,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    dec,
)
from quantumedge.execution.domain.positions import Position
from quantumedge.execution.engine_core import (
    CAP_ORDER_NOTIONAL,
    CAP_POSITION_NOTIONAL,
    POSITION_KEY,
    PROTECTION_OFF_MARKET,
    Emitter,
    EngineConfig,
    ListEmitter,
    log,
)
from quantumedge.execution.engine_exits import ExitsMixin
from quantumedge.execution.engine_intake import IntakeMixin, protection_off_market
from quantumedge.execution.engine_protection import ProtectionMixin
from quantumedge.execution.engine_recovery import RecoveryMixin
from quantumedge.execution.engine_updates import UpdatesMixin, fill_problem
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


class ExecutionEngine(IntakeMixin, UpdatesMixin, ProtectionMixin, ExitsMixin, RecoveryMixin):
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
            now = self._clock()
            order = Order(
                client_order_id=cid,
                symbol=intent.symbol or decision.symbol,
                side=Side(intent.side),
                order_type=OrderType.MARKET,
                quantity=dec(qty),  # for the record only: it is never sent
                intent_id=intent.intent_id,
                venue=self.venue.name,
                created_time_ns=now,
                updated_time_ns=now,
            )
            self.orders[cid] = order
            self.counters["intents_received"] += 1
            return self._refuse(order, code, message)

    def handled(self, decision: risk_pb2.RiskDecision) -> bool:
        """This decision's intent already has an order (placed, working, done or refused)."""
        intent_id = decision.intent.intent_id
        with self._lock:
            if not intent_id:
                return False
            known = [self.orders.get(ids.order_id(k, intent_id)) for k in (ids.ENTRY, ids.EXIT)]
            # An order whose PENDING write never reached the broker was not sent: its intent is not handled yet.
            return any(o is not None and not o.awaiting_send for o in known)

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
            price = self._mark_price(event)
            time_ns = event.exchange_time_ns or event.receive_time_ns
            if price and time_ns >= self._mark_times.get(event.symbol, 0):
                self.marks[event.symbol] = price
                self._mark_times[event.symbol] = time_ns
                self._mark(event.symbol, price, time_ns)
            self.check_time_stops(self.venue.now_ns())

    def _mark_price(self, event: market_pb2.MarketEvent) -> Decimal:
        """The event's mark; the Decimal is reused while the prices it comes from repeat (same value)."""
        sources = _mark_sources(event)
        if not sources:
            return ZERO
        last = self._mark_sources.get(event.symbol)
        if last is not None and last[0] == sources:
            return last[1]
        price = _mark_from(sources)
        self._mark_sources[event.symbol] = (sources, price)
        return price

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
            for cid in self._indexes.timed():
                entry = self.orders[cid]
                if entry.time_stop_deadline_ns and entry.time_stop_deadline_ns <= now_ns:
                    self._time_stop(entry)
            # A PENDING one is resolved first: only an order the venue acknowledged can be cancelled there.
            due = {
                c
                for c in self._indexes.expiring()
                if self.orders[c].expire_time_ns <= now_ns and self.orders[c].status is not OrderStatus.PENDING
            }
            if due:
                self._cancel_where(lambda o: o.client_order_id in due, note="resting entry expired unfilled")

    # -- intent -> order --------------------------------------------------------------------------
    # -- venue updates ----------------------------------------------------------------------------
    # -- protection -------------------------------------------------------------------------------
    # -- cancel / flatten -------------------------------------------------------------------------
    # -- reconciliation ---------------------------------------------------------------------------
    # -- helpers ----------------------------------------------------------------------------------


def _mark_sources(event: market_pb2.MarketEvent) -> tuple[float, ...]:
    """The floats an event's mark comes from: a trade's price, or the best bid and ask; () when none."""
    kind = event.WhichOneof("payload")
    if kind == "trade":
        return (event.trade.price,)
    if kind == "top_of_book" and event.top_of_book.bid_price and event.top_of_book.ask_price:
        return (event.top_of_book.bid_price, event.top_of_book.ask_price)
    if kind == "depth" and event.depth.bids and event.depth.asks:
        return (event.depth.bids[0].price, event.depth.asks[0].price)
    return ()


def _mark_from(sources: tuple[float, ...]) -> Decimal:
    if len(sources) == 1:
        return dec(sources[0])
    return (dec(sources[0]) + dec(sources[1])) / 2

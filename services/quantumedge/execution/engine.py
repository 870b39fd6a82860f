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
import dataclasses
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from quantumedge.execution import compaction, ids, protection
from quantumedge.execution.convert import (
    fill_to_pb,
    order_from_pb,
    order_to_pb,
    order_type_from_pb,
    position_from_pb,
    position_to_pb,
)
from quantumedge.execution.errors import (
    OrderNotFound,
    OutcomeUnknown,
    RateLimited,
    VenueError,
    VenueRejected,
    VenueUnavailable,
)
from quantumedge.execution.filters import FilterViolation, SymbolFilters
from quantumedge.execution.orders import (
    ZERO,
    Fill,
    IllegalTransition,
    OcoRequest,
    Order,
    OrderError,
    OrderRequest,
    OrderRole,
    OrderSnapshot,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    Side,
    TimeInForce,
    dec,
)
from quantumedge.execution.unknown import OUTCOME_UNKNOWN, UnknownOutcomes
from quantumedge.execution.venue import Venue
from quantumedge.shared import bounds
from quantumedge.shared.backoff import Backoff
from quantumedge.shared.logs import get_logger
from quantumedge.shared.telemetry import meter, tracer
from quantumedge.v1 import control_pb2, execution_pb2, market_pb2, risk_pb2

if TYPE_CHECKING:
    from quantumedge.settings import Settings

log = get_logger(__name__)
_tracer = tracer("execution")
_meter = meter("execution")
_orders_sent = _meter.create_counter("qe.execution.orders_sent", description="orders sent to the venue")
_fills_seen = _meter.create_counter("qe.execution.fills", description="fills applied")
_refused = _meter.create_counter("qe.execution.rejects", description="orders refused locally or by the venue")
_venue_ms = _meter.create_histogram("qe.execution.venue_call", unit="ms", description="venue call duration")


class Emitter(Protocol):
    def report(self, symbol: str, report: execution_pb2.ExecutionReport) -> None: ...

    def state(self, key: str, record: execution_pb2.ExecutionReport | None) -> None:
        """The latest record of `key` on the compacted state topic; None deletes the key (a tombstone)."""

    def flush(self) -> None: ...


class ListEmitter:
    """Keeps everything in lists (tests, backtests)."""

    def __init__(self) -> None:
        self.reports: list[execution_pb2.ExecutionReport] = []
        self.states: list[tuple[str, execution_pb2.ExecutionReport | None]] = []

    def report(self, symbol: str, report: execution_pb2.ExecutionReport) -> None:
        self.reports.append(report)

    def state(self, key: str, record: execution_pb2.ExecutionReport | None) -> None:
        self.states.append((key, record))

    def flush(self) -> None:
        pass


@dataclass
class EngineConfig:
    starting_equity: Decimal = Decimal(10_000)
    symbols: Sequence[str] = ()
    # Position reports caused only by a new mark, at most this often per symbol (market time).
    mark_report_interval_ns: int = 1_000_000_000
    # A PENDING order younger than this is still being sent; older ones are resolved by query.
    pending_grace_ns: int = 2_000_000_000
    # An order whose outcome is unknown is resolved this long (venue clock) before its symbol goes to exits
    # only with an operator alert; longer than the matching engine's own 10 s timeout plus recvWindow.
    unknown_outcome_bound_ns: int = 60_000_000_000
    # Finished orders older than this (engine clock) are tombstoned on execution.state.v1 and forgotten.
    state_retention_ns: int = compaction.DEFAULT_RETENTION_NS
    # Hard caps in quote currency (0 = none, for tests of other rules; the service always sets both).
    max_order_notional: Decimal = ZERO
    max_position_notional: Decimal = ZERO

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineConfig:
        """What the service and the backtester both run with."""
        ex = settings.execution
        return cls(
            starting_equity=Decimal(repr(ex.starting_equity)),
            symbols=tuple(dict.fromkeys(settings.symbols)),
            mark_report_interval_ns=ex.mark_report_interval_ms * 1_000_000,
            max_order_notional=Decimal(repr(ex.max_order_notional)),
            max_position_notional=Decimal(repr(ex.max_position_notional)),
            unknown_outcome_bound_ns=int(ex.unknown_outcome_bound_s * 1e9),
        )


POSITION_KEY = "position:"
CAP_ORDER_NOTIONAL = "CAP_ORDER_NOTIONAL"
CAP_POSITION_NOTIONAL = "CAP_POSITION_NOTIONAL"
PROTECTION_OFF_MARKET = "PROTECTION_OFF_MARKET"


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


class ExecutionEngine:
    def __init__(
        self,
        venue: Venue,
        emitter: Emitter,
        config: EngineConfig | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.venue = venue
        self.emitter = emitter
        self.config = config or EngineConfig()
        self._clock = clock
        self._lock = threading.RLock()
        self.orders: dict[str, Order] = {}
        self.positions: dict[str, Position] = {}
        self.marks: dict[str, Decimal] = {}
        # The exchange time of each symbol's mark: a mark never goes back to an older event, whichever of the
        # three market topics the consumer happened to read last (a trade handled after the newer book).
        self._mark_times: dict[str, int] = {}
        self.halted = False
        self.halt_reason = ""
        # Risk's trading states (control.v1 "state:<scope>", scope "" = the account): REDUCING takes no entries.
        self.trading_states: dict[str, risk_pb2.SymbolTradingState] = {}
        self._last_mark_report: dict[str, int] = {}
        self._awaiting_protection: set[str] = set()
        # Indexes kept by _index() on every change, so per-event work does not grow with history.
        self._open: dict[str, set[str]] = {}
        self._timed: set[str] = set()
        # Open entries with an expiry (resting post-only entries): cancelled once it passes.
        self._expiring: set[str] = set()
        # symbol -> (first failed exit's id, attempts so far, when to try again on the venue's clock)
        self._exit_retries: dict[str, tuple[str, int, int]] = {}
        # Seeded: a backtest's retries land at the same market time on every run.
        self._exit_backoff = Backoff(base_s=1.0, cap_s=60.0, rng=random.Random(0))
        self.unknown = UnknownOutcomes(bound_ns=self.config.unknown_outcome_bound_ns)
        self._seq = 0
        self.counters = dict.fromkeys(
            (
                "intents_received",
                "ignored_decisions",
                "orders_placed",
                "fills",
                "rejects",
                "duplicates_ignored",
                "reconciled_differences",
                "unknown_updates",
                "refused_fills",
            ),
            0,
        )

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
            time_ns = event.exchange_time_ns or event.receive_time_ns
            if price and time_ns >= self._mark_times.get(event.symbol, 0):
                self.marks[event.symbol] = price
                self._mark_times[event.symbol] = time_ns
                self._mark(event.symbol, price, time_ns)
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

    def equity(self) -> Decimal:
        return self.config.starting_equity + sum(
            (p.realized_pnl + p.unrealized_pnl for p in self.positions.values()), ZERO
        )

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
    def restore(self, records: Iterable[tuple[str, bytes]]) -> None:
        """Rebuild orders and positions from execution.state.v1 (key, value) pairs, oldest first."""
        latest: dict[str, bytes] = {}
        for key, value in records:
            if value:
                latest[key] = value
            else:
                latest.pop(key, None)  # a tombstone
        with self._lock:
            for key, value in latest.items():
                record = execution_pb2.ExecutionReport.FromString(value)
                if key.startswith(POSITION_KEY) and record.HasField("position"):
                    self.positions[record.position.symbol] = position_from_pb(record.position)
                elif record.HasField("order") and record.order.client_order_id:
                    order = self.orders[record.order.client_order_id] = order_from_pb(record.order)
                    self._index(order)
                    if order.exit_retry_due_ns:
                        schedule = (order.client_order_id, order.exit_retry_attempts, order.exit_retry_due_ns)
                        self._exit_retries[order.symbol] = schedule
        log.info("state restored", extra={"orders": len(self.orders), "positions": len(self.positions)})

    def reconcile(self) -> list[str]:
        """Bring local state to the venue's: open orders, orders it has that we lost, fills missed,
        balances. Every difference corrected is reported with a note; the notes are returned."""
        with self._lock:
            before = self.counters["reconciled_differences"]
            notes: list[str] = []
            self._reconcile_orders(notes)
            self._reconcile_positions(notes)
            for entry in list(self.orders.values()):
                if not self._needs_protection(entry):
                    continue
                if self.venue.stateless:
                    # The paper venue has no book yet after a restart: protect on the first market event.
                    self._awaiting_protection.add(entry.client_order_id)
                    continue
                notes.append(f"{entry.client_order_id}: protection placed after restart")
                self._protect(entry)
            log.info(
                "reconciled with venue",
                extra={"differences": self.counters["reconciled_differences"] - before, "notes": notes[:20]},
            )
            return notes

    def resolve_pending(self) -> None:
        """Orders whose result stayed unknown: query them. One whose send had an unknown outcome is never
        forgotten or sent again (see resolve_unknown); one persisted PENDING but never answered (a crash
        mid-send) is forgotten once the venue provably cannot have it (absent after recvWindow)."""
        with self._lock:
            now = self._clock()
            venue_now = self.venue.now_ns()
            for order in [o for o in self._open_orders() if o.status is OrderStatus.PENDING]:
                if order.outcome_unknown:
                    self._resolve_unknown(order, venue_now)
                    continue
                if order.updated_time_ns and now - order.updated_time_ns < self.config.pending_grace_ns:
                    continue
                try:
                    snapshot = self.venue.query(order.symbol, order.client_order_id)
                except VenueError as exc:
                    log.warning(
                        "pending order still unresolved", extra={"order": order.client_order_id, "error": str(exc)}
                    )
                    continue
                if snapshot is not None:
                    self._sync_snapshot(order, snapshot, "resolved by query")
                elif self.venue.safe_to_forget(order.sent_time_ms):
                    self._never_sent(order, "never reached the venue (absent after recvWindow)")

    def _never_sent(self, order: Order, why: str) -> None:
        """An order persisted PENDING that provably never reached the venue (not one whose outcome is
        unknown: that is never re-sent). An exit is sent again while the position stands (as an exit retry,
        due now); an entry is refused with NOT_SENT so risk sees it and the strategy decides afresh on
        today's prices; a protective leg expires, which places protection again or closes the position."""
        if order.role is OrderRole.ENTRY:
            order.reject(protection.NOT_SENT, f"{why}: not sent; decided again", self._clock())
            self.counters["rejects"] += 1
            log.warning("unsent entry refused for a new decision", extra={"order": order.client_order_id})
            self._emit(order, note=f"refused: {why}; the intent is decided again, not sent stale")
            return
        self._set_status(order, OrderStatus.EXPIRED, why)
        if order.role is OrderRole.EXIT and self._held(order.symbol) != 0:
            log.warning("unsent exit sent again", extra={"order": order.client_order_id, "why": why})
            self._schedule_exit_retry(order, immediately=True)
        self._after_change(order)  # a protective leg that never got there leaves a naked position

    def _resolve_unknown(self, order: Order, now_ns: int) -> None:
        """Ask the venue about an order whose outcome is unknown (on the backoff schedule); past the bound,
        raise the operator alert once: the symbol takes exits only until the order's fate is known."""
        if self.unknown.due(order, now_ns):
            try:
                snapshot = self.venue.query(order.symbol, order.client_order_id)
            except VenueError as exc:
                log.warning("unknown order could not be queried", extra={"order": order.client_order_id, "error": exc})
                snapshot = None
            if snapshot is not None:
                self._sync_snapshot(order, snapshot, f"outcome resolved by query ({order.outcome_unknown_code})")
                if not order.outcome_unknown:
                    self.unknown.resolved(order.client_order_id)
                    return
            self.unknown.asked(order, now_ns)
        if self.unknown.needs_alert(order, now_ns):
            age_s = (now_ns - order.outcome_unknown_since_ns) / 1e9
            log.warning(
                "order outcome still unknown past the bound; symbol takes exits only",
                extra={
                    "reason_code": OUTCOME_UNKNOWN,
                    "order": order.client_order_id,
                    "symbol": order.symbol,
                    "code": order.outcome_unknown_code,
                    "unknown_for_s": round(age_s, 1),
                },
            )
            order._touch(self._clock())
            self._emit(
                order,
                note=f"outcome unknown for {age_s:.0f}s ({order.outcome_unknown_code}): {order.symbol} takes exits "
                "only; never sent again; still being resolved",
                alert=OUTCOME_UNKNOWN,
            )
            if order.role in _PROTECTIVE and order.parent_client_order_id:
                # Protection that may never have arrived: the position is closed as its stop would close it.
                self._protection_failed(order.parent_client_order_id, "protection outcome unknown past the bound")

    def _outcome_unknown(self, order: Order, exc: VenueError, what: str = "order") -> None:
        """The venue may have the order: keep it PENDING, never send it again, resolve it later."""
        log.warning(
            "order outcome unknown; never sent again, resolving",
            extra={"order": order.client_order_id, "code": exc.code, "reason_code": OUTCOME_UNKNOWN},
        )
        order.outcome_unknown_since_ns = order.outcome_unknown_since_ns or self.venue.now_ns()
        order.outcome_unknown_code = exc.code
        order._touch(self._clock())
        self._emit(order, note=f"{what} outcome unknown ({exc}): never sent again; resolving")

    def compact(self) -> int:
        """Tombstone finished orders nothing needs any more (see compaction), so execution.state.v1 and a
        restart stay bounded by what is live plus a day, not by all history. Returns how many."""
        with self._lock:
            gone = compaction.forgettable(
                self.orders.values(),
                self._clock(),
                self._held,
                lambda symbol: protection.to_protect_again(symbol, self.orders.values()),
                self.config.state_retention_ns,
            )
            for cid in gone:
                order = self.orders.pop(cid)
                for index in (self._open.get(order.symbol, set()), self._timed, self._expiring):
                    index.discard(cid)
                self.emitter.state(cid, None)
            if gone:
                log.info("finished orders forgotten", extra={"orders": len(gone), "kept": len(self.orders)})
            return len(gone)

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
    def _apply(self, update: OrderUpdate, note: str = "") -> None:
        order = self.orders.get(update.client_order_id)
        if order is None:
            self.counters["unknown_updates"] += 1
            log.info("update for an order we do not track", extra={"order": update.client_order_id})
            return
        note = note or update.note
        if update.venue_order_id and order.venue_order_id != update.venue_order_id:
            order.venue_order_id = update.venue_order_id
        if update.fill is not None:
            self._apply_fill(order, update.fill, note)
        if update.executed_quantity > order.filled_quantity:
            self._catch_up_fills(order, update)
        if update.status != order.status:
            if update.status is OrderStatus.REJECTED:
                order.reject_code = update.reject_code or order.reject_code
                order.reject_message = update.reject_message or order.reject_message
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
        if (
            order.synthetic_credit > 0
            and not fill.trade_id.startswith("recon:")
            and fill.trade_id not in order.trade_ids
        ):
            covered = min(order.synthetic_credit, fill.quantity)
            order.synthetic_credit -= covered
            if covered == fill.quantity:
                log.info(
                    "fill already counted by a reconciled stand-in",
                    extra={"order": order.client_order_id, "trade": fill.trade_id},
                )
                order.trade_ids.add(fill.trade_id)
                order._touch(self._clock())
                self._persist(order)  # the credit used up, so a restart does not use it again
                return
            share = (fill.quantity - covered) / fill.quantity
            fill = dataclasses.replace(
                fill,
                quantity=fill.quantity - covered,
                fee=fill.fee * share,
                fee_quote=fill.fee_quote * share,
                base_fee=fill.base_fee * share,
            )
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
            order.synthetic_credit += missing
            order._touch(self._clock())
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
            parent.time_stop_deadline_ns = 0
            parent._touch(self._clock())
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
            for entry in [self.orders[c] for c in list(self._timed)]:
                if entry.symbol == order.symbol and entry.time_stop_deadline_ns:
                    entry.time_stop_deadline_ns = 0
                    entry._touch(self._clock())
                    self._emit(entry, note="position closed: time stop cleared")

    def _sync_snapshot(self, order: Order, snapshot: OrderSnapshot, note: str) -> None:
        version = order.version
        for update in self.venue.snapshot_updates(snapshot, note):
            self._apply(update, note=f"{note}: venue shows {snapshot.status.name}")
        if order.version != version:
            self.counters["reconciled_differences"] += 1

    # -- protection -------------------------------------------------------------------------------
    def _needs_protection(self, order: Order) -> bool:
        if not order.wants_protection or order.filled_quantity <= 0:
            return False
        if not order.protection_placed:
            return order.status.terminal or protection.fills_while_resting(order)
        return self._protection_grows(order)

    def _protection_grows(self, entry: Order) -> bool:
        """A filling GTC entry whose protection covers less than it has filled, by a tradable step, and whose
        protection is still whole (none of it filled or taken away by an exit)."""
        if not (entry.take_profit_price or entry.stop_loss_price or entry.trailing_stop_bps):
            return False
        legs = protection.current_legs(entry, self._open_orders(entry.symbol), self._protective_ids(entry))
        if entry.protected_quantity <= 0 or not legs:
            return False  # never placed by quantity (a record from before), or gone: nothing to grow
        if any(o.filled_quantity > 0 for o in legs):
            return False
        filters = self.venue.filters(entry.symbol)
        target = filters.round_quantity(protection.protectable(entry), OrderType.LIMIT)
        return target > entry.protected_quantity

    def _protective_ids(self, entry: Order) -> tuple[str, str, str]:
        return ids.protective_ids(entry.client_order_id, entry.protection_generation)

    def _protect(self, entry: Order) -> None:
        """TP and SL as one OCO (or the one leg asked for) for what the entry filled; arm the time stop.
        Called again while a GTC entry fills: the protection is replaced by one covering all it has filled."""
        first = not entry.protection_placed
        entry.protection_placed = True
        if first and entry.time_stop_ns:
            # On the venue's clock (market time for paper), which is what check_time_stops compares with.
            entry.time_stop_deadline_ns = self.venue.now_ns() + entry.time_stop_ns
        if not first:
            legs = protection.current_legs(entry, self._open_orders(entry.symbol), self._protective_ids(entry))
            ids_now = {o.client_order_id for o in legs}
            self._cancel_where(lambda o: o.client_order_id in ids_now, note="protection grows with the entry")
            if any(o.filled_quantity > 0 for o in legs):
                return  # a leg filled meanwhile: the position is being closed, nothing to grow
            entry.protection_generation += 1
        entry._touch(self._clock())
        self._emit(entry, note="protection" if first else "protection grows with the entry's fills")
        held = abs(self._held(entry.symbol))
        self._place_protection(entry, min(protection.protectable(entry), held))

    def _protect_remainder(self, symbol: str, why: str) -> None:
        """An exit that did not close all (refused, cancelled, or filled in part) after protection was
        cancelled for it: what is still held gets protection again, as the latest entry asked for."""
        if self.halted or symbol in self._exit_retries or self._held(symbol) == 0:
            return
        open_here = self._open_orders(symbol)
        if any(o.role in _PROTECTIVE or o.role is OrderRole.EXIT for o in open_here):
            return  # still protected, or an exit is still working on it
        entry = protection.to_protect_again(symbol, self.orders.values())
        if entry is None:
            return
        entry.protection_generation += 1
        entry._touch(self._clock())
        log.warning("protecting what an exit left", extra={"order": entry.client_order_id, "why": why})
        self._emit(entry, note=f"protection placed again for what is held ({why})")
        self._place_protection(entry, self._closable(symbol))

    def _place_protection(self, entry: Order, quantity: Decimal) -> None:
        filters = self.venue.filters(entry.symbol)
        quantity = filters.round_quantity(quantity, OrderType.LIMIT)
        mark = self.marks.get(entry.symbol) or entry.average_price
        side = entry.side.opposite
        tp, sl, trailing = self._fitted_protection(entry, filters, side, mark)
        if not (tp or sl or trailing):
            return  # a time stop only
        violation = filters.check(OrderType.MARKET, quantity, reference_price=mark)
        if quantity <= 0 or violation is not None:
            why = violation.message if violation else "nothing left to protect"
            log.warning("position too small to protect", extra={"order": entry.client_order_id, "qty": str(quantity)})
            if protection.fills_while_resting(entry) and entry.protected_quantity <= 0:
                entry.protection_placed = False  # tried again as more of the entry fills
            entry._touch(self._clock())
            self._emit(entry, note=f"unprotected: {quantity} {entry.symbol} is below the venue's minimum ({why})")
            return
        room = self._protection_room(entry, filters, placing=True)
        if room is not None:
            self._protection_failed(entry.client_order_id, str(room))
            return
        tp_id, sl_id, list_id = self._protective_ids(entry)
        entry.protected_quantity = quantity
        entry._touch(self._clock())
        self._persist(entry)  # what the protection covers, so a restart does not place it again
        now = self._clock()
        legs: list[Order] = []
        if tp:
            legs.append(
                Order(
                    tp_id,
                    entry.symbol,
                    side,
                    OrderType.LIMIT,
                    quantity,
                    price=tp,
                    time_in_force=TimeInForce.GTC,
                    role=OrderRole.TAKE_PROFIT,
                    intent_id=entry.intent_id,
                    parent_client_order_id=entry.client_order_id,
                    venue=self.venue.name,
                    created_time_ns=now,
                    updated_time_ns=now,
                )
            )
        if sl or trailing:
            legs.append(
                Order(
                    sl_id,
                    entry.symbol,
                    side,
                    OrderType.MARKET,
                    quantity,
                    stop_price=sl,
                    trailing_stop_bps=trailing,
                    role=OrderRole.STOP_LOSS,
                    intent_id=entry.intent_id,
                    parent_client_order_id=entry.client_order_id,
                    venue=self.venue.name,
                    created_time_ns=now,
                    updated_time_ns=now,
                )
            )
        if len(legs) == 1:
            self._send(legs[0])
            return
        for leg in legs:
            leg.group_id = list_id
            leg.sent_time_ms = self.venue.now_ns() // 1_000_000
            self.orders[leg.client_order_id] = leg
            self._emit(leg, note="sending (OCO)")
        self.emitter.flush()
        request = OcoRequest(list_id, entry.symbol, side, quantity, tp_id, tp, sl_id, sl, trailing)
        try:
            with self._venue_span("venue submit OCO", legs[0]):
                updates = self.venue.submit_oco(request)
        except (VenueRejected, VenueUnavailable, RateLimited) as exc:
            for leg in legs:
                try:
                    leg.reject(exc.code, exc.message, self._clock())
                except IllegalTransition:
                    continue
                self.counters["rejects"] += 1
                self._emit(leg, note=f"rejected: {exc}")
            self._protection_failed(entry.client_order_id, str(exc))
            return
        except OutcomeUnknown as exc:
            for leg in legs:
                self._outcome_unknown(leg, exc, "OCO leg")
            return
        self.counters["orders_placed"] += 2
        for update in updates:
            self._apply(update)

    def _fitted_protection(
        self, entry: Order, filters: SymbolFilters, side: Side, mark: Decimal
    ) -> tuple[Decimal, Decimal, Decimal]:
        """TP, SL and trailing delta moved inside the venue's filters (PRICE_FILTER on both prices,
        PERCENT_PRICE_BY_SIDE on the take-profit, TRAILING_DELTA), so the OCO is not refused."""
        asked_tp = filters.round_price(entry.take_profit_price) if entry.take_profit_price else ZERO
        asked_sl = filters.round_price(entry.stop_loss_price) if entry.stop_loss_price else ZERO
        average = self.venue.average_price(entry.symbol) or mark
        tp = filters.fit_take_profit(side, asked_tp, average) if asked_tp else ZERO
        sl = filters.fit_stop_price(asked_sl)
        trailing = filters.fit_trailing_delta(side, entry.trailing_stop_bps)
        if (tp, sl, trailing) != (asked_tp, asked_sl, entry.trailing_stop_bps):
            log.info(
                "protection moved inside the venue's filters",
                extra={"order": entry.client_order_id, "tp": str(tp), "sl": str(sl), "trailing_bps": str(trailing)},
            )
        return tp, sl, trailing

    def _protection_room(self, entry: Order, filters: SymbolFilters, placing: bool = False) -> FilterViolation | None:
        """Whether the entry's protection fits the symbol's open-order filters (MAX_NUM_ORDER_LISTS,
        MAX_NUM_ALGO_ORDERS, MAX_NUM_ORDERS): checked before the entry goes, as a position whose protection
        the venue would refuse is not opened, and again before the protection is sent."""
        if not (entry.stop_loss_price or entry.trailing_stop_bps):
            return None
        open_here = [o for o in self._open_orders(entry.symbol) if o is not entry]
        algo = sum(1 for o in open_here if o.role is OrderRole.STOP_LOSS)
        if entry.take_profit_price:
            lists = len({o.group_id for o in open_here if o.group_id})
            return filters.check_list(len(open_here) + (0 if placing else 1), algo, lists)
        return filters.check_algo(algo)

    def _protection_vanished(self, entry: Order) -> bool:
        legs = protection.current_legs(entry, self.orders.values(), self._protective_ids(entry))
        return bool(legs) and all(
            o.status in (OrderStatus.EXPIRED, OrderStatus.REJECTED) and o.filled_quantity == 0 for o in legs
        )

    def _protection_failed(self, entry_id: str, reason: str) -> None:
        """A position the venue would not protect is closed at market: it is what the stop would do."""
        entry = self.orders.get(entry_id)
        if entry is None or self._held(entry.symbol) == 0:
            return
        log.error("protection refused; exiting at market", extra={"order": entry_id, "reason": reason})
        self._exit(entry, ids.order_id(ids.EXIT, entry_id, "unprotected"), f"protection refused ({reason})")

    def _time_stop(self, entry: Order) -> None:
        entry.time_stop_deadline_ns = 0
        entry._touch(self._clock())
        self._emit(entry, note="time stop reached")
        if self._held(entry.symbol) == 0:
            return
        self._cancel_where(
            lambda o: o.parent_client_order_id == entry.client_order_id and o.role in _PROTECTIVE, note="time stop"
        )
        self._exit(entry, ids.order_id(ids.TIME_STOP, entry.client_order_id), "time stop")

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

    # -- cancel / flatten -------------------------------------------------------------------------
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

    # -- reconciliation ---------------------------------------------------------------------------
    def _reconcile_orders(self, notes: list[str]) -> None:
        for order in self._open_orders():
            if self.venue.stateless:
                if order.status is OrderStatus.PENDING:
                    self._never_sent(order, "reconciled: never reached the paper venue before restart")
                    notes.append(f"{order.client_order_id}: never sent before restart -> {order.status.name}")
                else:
                    self.venue.restore(order)
                continue
            try:
                snapshot = self.venue.query(order.symbol, order.client_order_id)
            except VenueError as exc:
                notes.append(f"{order.client_order_id}: could not query ({exc}); retried later")
                continue
            if snapshot is None:
                if order.outcome_unknown:
                    continue  # never forgotten on absence: resolve_pending keeps asking
                if order.status is OrderStatus.PENDING and not self.venue.safe_to_forget(order.sent_time_ms):
                    continue
                self.counters["reconciled_differences"] += 1
                self._set_status(order, OrderStatus.EXPIRED, "reconciled: the venue has no such order")
                notes.append(f"{order.client_order_id}: venue has no such order -> EXPIRED")
                self._after_change(order)
                continue
            if snapshot.status != order.status or snapshot.executed_quantity != order.filled_quantity:
                notes.append(
                    f"{order.client_order_id}: local {order.status.name} {_plain(order.filled_quantity)}, "
                    f"venue {snapshot.status.name} {_plain(snapshot.executed_quantity)}"
                )
            self._sync_snapshot(order, snapshot, "reconciled")
        if self.venue.stateless:
            return
        try:
            venue_open = self.venue.open_orders()
        except VenueError as exc:
            notes.append(f"open orders unavailable: {exc}")
            return
        for snapshot in venue_open:
            if snapshot.client_order_id in self.orders:
                continue
            if not ids.is_ours(snapshot.client_order_id):
                notes.append(f"{snapshot.client_order_id}: open on the venue but not ours; left alone")
                continue
            order = self._adopt(snapshot)
            notes.append(f"{order.client_order_id}: open on the venue, unknown locally -> adopted")
            self.counters["reconciled_differences"] += 1
            self._sync_snapshot(order, snapshot, "reconciled: adopted from venue")

    def _adopt(self, snapshot: OrderSnapshot) -> Order:
        cid = snapshot.client_order_id
        role = OrderRole.ENTRY
        parent = ""
        if cid.endswith(ids.TAKE_PROFIT_SUFFIX):
            role, parent = OrderRole.TAKE_PROFIT, ids.protected_entry(cid)
        elif cid.endswith(ids.STOP_LOSS_SUFFIX):
            role, parent = OrderRole.STOP_LOSS, ids.protected_entry(cid)
        elif cid[len(ids.PREFIX)] in (ids.EXIT, ids.FLATTEN, ids.TIME_STOP):
            role = OrderRole.EXIT
        order = Order(
            cid,
            snapshot.symbol,
            snapshot.side,
            snapshot.order_type,
            snapshot.quantity,
            price=snapshot.price,
            stop_price=snapshot.stop_price,
            time_in_force=snapshot.time_in_force,
            role=role,
            parent_client_order_id=parent,
            group_id=cid[: -len(ids.TAKE_PROFIT_SUFFIX)] + ids.OCO_LIST_SUFFIX if parent and snapshot.group_id else "",
            venue=self.venue.name,
            venue_order_id=snapshot.venue_order_id,
            created_time_ns=snapshot.time_ns or self._clock(),
        )
        self.orders[cid] = order
        self._index(order)
        return order

    def _reconcile_positions(self, notes: list[str]) -> None:
        symbols = sorted(set(self.config.symbols) | set(self.positions) | {o.symbol for o in self.orders.values()})
        if not symbols:
            return
        try:
            balances = self.venue.base_balances(symbols)
        except VenueError as exc:
            notes.append(f"balances unavailable: {exc}")
            return
        if balances is None:
            return
        for symbol in symbols:
            position = self._position(symbol)
            balance = balances.get(symbol, ZERO)
            if not position.baseline_set:
                # First sight of this account: what it holds beyond our position is not ours to manage.
                position.baseline_quantity = balance - position.quantity
                position.baseline_set = True
                self._emit(position=position, note=f"baseline set: {symbol} balance {_plain(balance)} not managed")
                continue
            venue_quantity = balance - position.baseline_quantity
            if venue_quantity == position.quantity:
                continue
            old = position.quantity
            if venue_quantity == 0:
                position.average_price = ZERO
            elif old == 0 or (old > 0) != (venue_quantity > 0):
                position.average_price = self.marks.get(symbol, ZERO)
            position.quantity = venue_quantity
            self._update_dust(position)
            self.counters["reconciled_differences"] += 1
            note = (
                f"reconciled: {symbol} position {_plain(old)} -> {_plain(venue_quantity)} "
                f"(venue balance {_plain(balance)} - baseline {_plain(position.baseline_quantity)})"
            )
            notes.append(note)
            log.warning(
                "position corrected to the venue's",
                extra={"symbol": symbol, "local": str(old), "venue": str(venue_quantity)},
            )
            self._emit(position=position, note=note)

    # -- helpers ----------------------------------------------------------------------------------
    def _position(self, symbol: str) -> Position:
        position = self.positions.get(symbol)
        if position is None:
            position = self.positions[symbol] = Position(symbol)
        return position

    def _held(self, symbol: str) -> Decimal:
        """What can be traded of the position: its dust is held, never sold, and never blocks a new trade."""
        position = self.positions.get(symbol)
        return position.tradable_quantity if position else ZERO

    def _update_dust(self, position: Position) -> None:
        try:
            filters = self.venue.filters(position.symbol)
        except VenueError:
            return  # the venue's filters are unknown for now: keep the last split
        price = self.marks.get(position.symbol) or position.mark_price or position.average_price
        dust = filters.dust(position.quantity, price)
        if dust != position.dust_quantity:
            position.dust_quantity = dust
            if dust:
                log.info("dust left in the position", extra={"symbol": position.symbol, "dust": _plain(dust)})

    def _record_ratchets(self, symbol: str) -> None:
        """A simulated trailing stop's ratchet, persisted as it moves: a restart resumes it where it stood."""
        for order in self._open_orders(symbol):
            if order.role is not OrderRole.STOP_LOSS or not order.trailing_stop_bps:
                continue
            peak = self.venue.trailing_peak(order.client_order_id)
            if peak and peak != order.trailing_peak:
                order.trailing_peak = peak
                order._touch(self._clock())
                self._persist(order)

    def _persist(self, order: Order) -> None:
        """Only the state record (no report): bookkeeping risk has no use for."""
        record = execution_pb2.ExecutionReport(
            report_id=f"{order.client_order_id}:{order.version}", time_ns=self._clock(), venue=self.venue.name
        )
        record.order.CopyFrom(order_to_pb(order))
        self.emitter.state(order.client_order_id, record)

    def _set_exit_retry(self, symbol: str, schedule: tuple[str, int, int] | None) -> None:
        """Keep the symbol's exit retry schedule, persisted on the first failed exit so it survives a restart."""
        current = self._exit_retries.pop(symbol, None)
        if schedule is not None:
            self._exit_retries[symbol] = schedule
        origin = self.orders.get((schedule or current or ("",))[0])
        if origin is None:
            return
        origin.exit_retry_attempts, origin.exit_retry_due_ns = (schedule[1], schedule[2]) if schedule else (0, 0)
        origin._touch(self._clock())
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

    def _closable(self, symbol: str, exclude: str = "") -> Decimal:
        """|position| less what open exit orders (other than `exclude`) are already selling or buying back."""
        working = sum(
            (
                o.quantity - o.filled_quantity
                for o in self._open_orders(symbol)
                if o.role is OrderRole.EXIT and o.client_order_id != exclude
            ),
            ZERO,
        )
        return max(ZERO, abs(self._held(symbol)) - working)

    def _open_count(self, symbol: str) -> int:
        return len(self._open.get(symbol, ()))

    def _open_orders(self, symbol: str | None = None) -> list[Order]:
        cids = self._open.get(symbol, set()) if symbol is not None else set().union(*self._open.values())
        return sorted((self.orders[c] for c in cids), key=lambda o: (o.created_time_ns, o.client_order_id))

    def _index(self, order: Order) -> None:
        cid = order.client_order_id
        if order.is_open:
            self._open.setdefault(order.symbol, set()).add(cid)
        else:
            self._open.get(order.symbol, set()).discard(cid)
        if order.role is OrderRole.ENTRY and order.time_stop_deadline_ns:
            self._timed.add(cid)
        else:
            self._timed.discard(cid)
        if order.is_open and order.role is OrderRole.ENTRY and order.expire_time_ns:
            self._expiring.add(cid)
        else:
            self._expiring.discard(cid)

    def _mark(self, symbol: str, price: Decimal, time_ns: int) -> None:
        position = self.positions.get(symbol)
        if position is None or position.flat:
            return
        position.mark(price, time_ns)
        last = self._last_mark_report.get(symbol, 0)
        if time_ns - last >= self.config.mark_report_interval_ns:
            self._last_mark_report[symbol] = time_ns
            self._emit(position=position, note="mark", persist=False)

    def _emit(
        self,
        order: Order | None = None,
        fill: Fill | None = None,
        position: Position | None = None,
        realized_delta: Decimal = ZERO,
        fee_delta: Decimal = ZERO,
        note: str = "",
        persist: bool = True,
        alert: str = "",
    ) -> None:
        now = self._clock()
        self._seq += 1
        report = execution_pb2.ExecutionReport(
            time_ns=now,
            realized_pnl_delta=float(realized_delta),
            fee_delta=float(fee_delta),
            equity=float(self.equity()),
            venue=self.venue.name,
            note=note,
            alert=alert,
        )
        if order is not None:
            self._index(order)
            report.order.CopyFrom(order_to_pb(order))
            report.report_id = f"{order.client_order_id}:{order.version}"
        if fill is not None:
            report.fill.CopyFrom(fill_to_pb(fill))
        if position is not None:
            report.position.CopyFrom(position_to_pb(position))
            if order is None:
                report.report_id = f"{POSITION_KEY}{position.symbol}:{now}:{self._seq}"
        symbol = order.symbol if order is not None else position.symbol if position is not None else ""
        self.emitter.report(symbol, report)
        if not persist:
            return
        if order is not None:
            state = execution_pb2.ExecutionReport(report_id=report.report_id, time_ns=now, venue=self.venue.name)
            state.order.CopyFrom(report.order)
            self.emitter.state(order.client_order_id, state)
        if position is not None:
            state = execution_pb2.ExecutionReport(
                report_id=f"{POSITION_KEY}{position.symbol}:{now}:{self._seq}", time_ns=now, venue=self.venue.name
            )
            state.position.CopyFrom(report.position)
            self.emitter.state(f"{POSITION_KEY}{position.symbol}", state)


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


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _mark_price(event: market_pb2.MarketEvent) -> Decimal:
    kind = event.WhichOneof("payload")
    if kind == "trade":
        return dec(event.trade.price)
    if kind == "top_of_book" and event.top_of_book.bid_price and event.top_of_book.ask_price:
        return (dec(event.top_of_book.bid_price) + dec(event.top_of_book.ask_price)) / 2
    if kind == "depth" and event.depth.bids and event.depth.asks:
        return (dec(event.depth.bids[0].price) + dec(event.depth.asks[0].price)) / 2
    return ZERO


def fill_problem(fill: Fill) -> bounds.Problem | None:
    """The first bad value of a venue's fill (price, quantity, fees), or None."""
    return bounds.first(
        bounds.price("fill.price", fill.price),
        bounds.quantity("fill.quantity", fill.quantity),
        bounds.number("fill.fee", fill.fee, low=-bounds.MAX_MONEY, high=bounds.MAX_MONEY),
        bounds.money("fill.fee_quote", fill.fee_quote),
        bounds.quantity("fill.base_fee", fill.base_fee, optional=True),
    )

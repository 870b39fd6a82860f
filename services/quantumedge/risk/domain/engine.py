"""The risk engine: signals and manual orders in, decisions out; reports and marks keep it live.

Pure domain code shared by the service and the backtester: no Kafka, gRPC, files or clock. Every
method takes the caller's `now_ns`; what must be published (decisions, halts) is returned.
"""

from __future__ import annotations

from quantumedge.risk.book_sync import BookSync, Dropped
from quantumedge.risk.domain import limits as checks
from quantumedge.risk.domain import policy
from quantumedge.risk.domain.decision_index import Counters, DecisionIndex
from quantumedge.risk.domain.entry import entry_approval, entry_reference, shape_entry
from quantumedge.risk.domain.limit_config import default_limits, validate_limits
from quantumedge.risk.domain.market import MarketView
from quantumedge.risk.domain.review import Closing, review_reference, validate_intent
from quantumedge.risk.domain.review import (
    InvalidIntentError as InvalidIntentError,  # re-exported: callers catch it here
)
from quantumedge.risk.domain.soft_states import SoftConditions
from quantumedge.risk.domain.state import Pending, RiskLedger
from quantumedge.risk.domain.trading_state import ACCOUNT, MODEL_DRIFT, TradingStates
from quantumedge.risk.settings import RiskSettings, SymbolFilter
from quantumedge.v1 import control_pb2, execution_pb2, market_pb2, risk_pb2, signal_pb2


class StillBreachedError(RuntimeError):
    """Resume refused: a halting limit is still over its threshold."""

    def __init__(self, breach: checks.Breach) -> None:
        super().__init__(
            f"{breach.describe()}; raise the limit with UpdateLimits"
            + (" or wait for the UTC day rollover" if breach.limit == "daily_loss_limit" else "")
        )
        self.breach = breach


# _decide_into's answer for an entry held until the book catches up (compared by identity).
_HELD: list[str] = ["held"]
Decided = tuple[signal_pb2.Signal, risk_pb2.RiskDecision]


class RiskEngine:
    def __init__(self, settings: RiskSettings, limits: risk_pb2.RiskLimits | None = None) -> None:
        self.settings = settings
        self.limits = limits if limits is not None else default_limits(settings)
        validate_limits(self.limits)
        self.ledger = RiskLedger(settings.starting_equity, settings.report_dedupe_size, self._min_tradable)
        self.market = MarketView(settings.freshness_clock)
        self.halt = control_pb2.HaltState()
        self.halt_reason = ""
        self.decisions = DecisionIndex(settings.decision_index_size)
        self.counters = Counters()
        self.trading = TradingStates()
        self.soft = SoftConditions(settings, self.trading)
        # Open positions' plans, learnt from reports: when each opened and its entry's time stop.
        self.holdings: dict[str, policy.Holding] = {}
        self.book_sync = BookSync(
            settings.book_sync_allowance_ns,
            settings.book_sync_max_lag_ns,
            settings.book_sync_max_wait_ns,
            settings.book_sync_max_held,
        )
        self._dropped: list[Dropped] = []

    # -- context -------------------------------------------------------------------------------------
    def ctx(self, now_ns: int) -> checks.Context:
        return checks.Context(self.ledger, self.market, self.limits, self.settings, now_ns)

    def _min_tradable(self, symbol: str) -> tuple[float, float]:
        f = self.filter_for(symbol)
        return f.step_size, f.min_notional

    def filter_for(self, symbol: str) -> SymbolFilter:
        return self.settings.symbol_filters.get(symbol, self.settings.default_filter)

    @property
    def halted(self) -> bool:
        return self.halt.halted

    # -- inputs --------------------------------------------------------------------------------------
    def on_report(self, report: execution_pb2.ExecutionReport, now_ns: int) -> checks.Breach | None:
        """Learn from one execution report; returns the breach if it just halted trading."""
        self.ledger.apply_report(report)
        self.soft.on_report(report, now_ns)
        symbol = report.order.symbol or report.position.symbol
        if symbol:
            if self.ledger.position(symbol) == 0:
                self.holdings.pop(symbol, None)
            elif symbol not in self.holdings:
                entry = report.order.role == execution_pb2.ORDER_ROLE_ENTRY
                self.holdings[symbol] = policy.Holding(
                    report.time_ns or now_ns, report.order.time_stop_ns if entry else 0
                )
        return self.check_auto_halt(now_ns)

    def on_market(self, event: market_pb2.MarketEvent, now_ns: int) -> checks.Breach | None:
        """Fold in a market event and re-mark the position; returns the breach if that halted trading."""
        self.market.apply(event, now_ns)
        self.soft.on_market(event.symbol, now_ns)
        mark = self.market.get(event.symbol).mark
        if mark > 0 and event.WhichOneof("payload") in ("top_of_book", "trade"):
            self.ledger.apply_mark(event.symbol, mark, now_ns)
            if self.ledger.position(event.symbol) == 0:
                return None  # an unheld symbol's price moves no PnL: skip the limit scan
            return self.check_auto_halt(now_ns)
        return None

    def check_auto_halt(self, now_ns: int) -> checks.Breach | None:
        self.soft.check_loss(max(0.0, -self.ledger.pnl_today), self.limits, now_ns)
        if self.halt.halted:
            return None
        breach = checks.halting_breach(self.ctx(now_ns))
        if breach is None:
            return None
        self.set_halt(
            control_pb2.HaltState(
                halted=True,
                cancel_open_orders=self.settings.auto_halt_cancel_open_orders,
                flatten=self.settings.auto_halt_flatten,
                limit=breach.limit,
                value=breach.value,
                threshold=breach.threshold,
                since_ns=now_ns,
                acknowledged_ns=self.halt.acknowledged_ns,
            ),
            f"automatic: {breach.describe()}",
        )
        return breach

    # -- halt and limits -----------------------------------------------------------------------------
    def set_halt(self, state: control_pb2.HaltState, reason: str) -> None:
        self.halt = control_pb2.HaltState()
        self.halt.CopyFrom(state)
        self.halt_reason = reason if state.halted else ""

    def apply_halt_event(self, state: control_pb2.HaltState, reason: str) -> bool:
        """A halt state from the control topic (another instance, or a rebuild); older states are ignored."""
        if state.since_ns and state.since_ns < self.halt.since_ns:
            return False
        if state.acknowledged_ns > self.halt.acknowledged_ns:
            self.ledger.acknowledge()
        self.set_halt(state, reason)
        return True

    def halt_now(self, reason: str, cancel_open_orders: bool, flatten: bool, now_ns: int) -> control_pb2.HaltState:
        """The kill switch: no new entries from now; exits stay possible."""
        self.set_halt(
            control_pb2.HaltState(
                halted=True,
                cancel_open_orders=cancel_open_orders,
                flatten=flatten,
                limit="operator",
                since_ns=now_ns,
                acknowledged_ns=self.halt.acknowledged_ns,
            ),
            reason or "operator halt",
        )
        return self.halt

    def resume(self, now_ns: int) -> control_pb2.HaltState:
        """Lift the halt; acknowledges the loss streak and drawdown. Refused while another halting limit holds.

        Nothing to lift, nothing acknowledged: a stray Resume must not reset the drawdown peak or the streak."""
        if not self.halt.halted:
            return self.halt
        saved = (self.ledger.loss_streak, self.ledger.peak_equity)
        self.ledger.acknowledge()
        breach = checks.halting_breach(self.ctx(now_ns))
        if breach is not None:
            self.ledger.loss_streak, self.ledger.peak_equity = saved
            raise StillBreachedError(breach)
        self.set_halt(control_pb2.HaltState(halted=False, since_ns=now_ns, acknowledged_ns=now_ns), "")
        return self.halt

    def set_limits(self, limits: risk_pb2.RiskLimits) -> None:
        validate_limits(limits)
        self.limits = risk_pb2.RiskLimits()
        self.limits.CopyFrom(limits)

    # -- decisions -----------------------------------------------------------------------------------
    def decide(self, signal: signal_pb2.Signal, now_ns: int) -> risk_pb2.RiskDecision:
        """The decision on one signal, on the book as it is. A redelivered signal gets the decision it had."""
        decision = self._decide(signal, now_ns, hold=False)
        assert decision is not None  # never held without hold=True
        return decision

    def on_signal(self, signal: signal_pb2.Signal, now_ns: int) -> list[Decided]:
        """The service's path: what is decided now. An entry whose signal is ahead of the symbol's book (market
        time) is held, decided by `release_held` once the book catches up; exits and refusals never wait."""
        out = self.expire_held(now_ns)
        decision = self._decide(signal, now_ns, hold=True)
        out.extend(self._take_dropped(now_ns))
        if decision is not None:
            out.append((signal, decision))
        return out

    def release_held(self, symbol: str, now_ns: int) -> list[Decided]:
        """Held signals of `symbol` decided now that its book has caught up, and any held too long refused."""
        out = self.expire_held(now_ns)
        for signal in self.book_sync.ready(symbol, self.market.market_ns(symbol)):
            decision = self._decide(signal, now_ns, hold=True)
            out.extend(self._take_dropped(now_ns))
            if decision is not None:
                out.append((signal, decision))
        return out

    def expire_held(self, now_ns: int) -> list[Decided]:
        """Held signals that waited past book_sync_max_wait_ns (a stalled feed), refused book_behind_signal."""
        self._dropped.extend(self.book_sync.expired(now_ns))
        return self._take_dropped(now_ns)

    def _take_dropped(self, now_ns: int) -> list[Decided]:
        out: list[Decided] = []
        for dropped in self._dropped:
            sid = dropped.signal.signal_id
            if sid and self.decisions.for_source(sid) is not None:
                continue  # decided already (a redelivery held again): that decision stands
            self.counters.signals_seen += 1
            decision = self._new_decision(dropped.signal, now_ns)
            out.append((dropped.signal, self._record(sid, decision, [f"{dropped.code}: {dropped.detail}"])))
        self._dropped.clear()
        return out

    def _new_decision(self, signal: signal_pb2.Signal, now_ns: int) -> risk_pb2.RiskDecision:
        return risk_pb2.RiskDecision(
            decision_id=policy.decision_id_for("signal", signal.signal_id),
            symbol=signal.symbol,
            signal_id=signal.signal_id,
            decided_time_ns=now_ns,
        )

    def _decide(self, signal: signal_pb2.Signal, now_ns: int, hold: bool) -> risk_pb2.RiskDecision | None:
        previous = self.decisions.for_source(signal.signal_id) if signal.signal_id else None
        if previous is not None:
            return previous
        decision = self._new_decision(signal, now_ns)
        reasons = self._decide_into(signal, decision, now_ns, hold)
        if reasons is _HELD:
            return None
        self.counters.signals_seen += 1
        return self._record(signal.signal_id, decision, reasons)

    def _decide_into(
        self, signal: signal_pb2.Signal, decision: risk_pb2.RiskDecision, now_ns: int, hold: bool = False
    ) -> list[str]:
        ctx = self.ctx(now_ns)
        symbol = signal.symbol
        if not symbol:
            return ["invalid_signal: no symbol"]
        self.soft.on_signal(symbol, now_ns)  # the model answers: not stale, whatever the gates say
        gates = checks.fail_closed_reasons(ctx, symbol)
        max_age = self.settings.max_signal_age_ns
        if max_age and not signal.created_time_ns:
            gates.append("stale_signal: no creation time, its age cannot be checked")
        elif max_age and now_ns - signal.created_time_ns > max_age:
            gates.append(
                f"stale_signal: created {(now_ns - signal.created_time_ns) / 1e9:.1f}s ago > {max_age / 1e9:.1f}s"
            )
        if gates:
            return gates
        self._follow_drift(signal, now_ns)
        position = self.ledger.position(symbol)
        action = policy.classify(signal, position, self.limits, self.settings, self.holdings.get(symbol), now_ns)
        if action.kind == risk_pb2.INTENT_KIND_EXIT:
            return self._exit(symbol, action, position, signal.signal_id, decision, now_ns)
        refused = self.trading.refusal(symbol)
        if action.kind == risk_pb2.INTENT_KIND_ENTRY and refused:
            halted = [f"halted: {self.halt_reason}"] if self.halted else []  # the strongest state reads first
            return [*halted, refused, *action.reasons]
        if action.kind != risk_pb2.INTENT_KIND_ENTRY or action.reasons:
            return action.reasons
        if not self.settings.allow_pyramiding:
            # The position may not show an approved entry yet: without this, a burst of signals
            # would stack entries before the first fill is reported.
            pending = self._pending(symbol, exit_=False, now_ns=now_ns)
            if pending:
                return [f"entry_pending: {symbol} already has intent {pending[0].intent_id}; no pyramiding"]
        book_ns = self.market.market_ns(symbol)
        behind = self.book_sync.signal_behind(signal, book_ns, self.settings.book_sync_max_signal_lag_ns)
        if hold and behind:
            return [behind]
        if hold and self.book_sync.behind(signal, book_ns):
            # Priced on this book, its take-profit and stop would be stale: wait for the book (never for exits).
            horizon = action.prediction.horizon if action.prediction is not None else 0
            self._dropped.extend(self.book_sync.hold(signal, horizon, book_ns, now_ns))
            return _HELD
        return self._entry(ctx, symbol, action, signal, decision, now_ns)

    def _follow_drift(self, signal: signal_pb2.Signal, now_ns: int) -> None:
        """Drift-marked signals put the symbol in exits only; unmarked ones lift that (and only that) cause."""
        if not self.settings.exits_only_on_drift:
            return
        if signal.drift:
            self.trading.reduce(signal.symbol, MODEL_DRIFT, signal.drift_reason or "drift", now_ns)
        else:
            self.trading.lift(signal.symbol, MODEL_DRIFT, now_ns)

    def _exit(
        self,
        symbol: str,
        action: policy.Action,
        position: float,
        signal_id: str,
        decision: risk_pb2.RiskDecision,
        now_ns: int,
    ) -> list[str]:
        pending = self._pending(symbol, exit_=True, now_ns=now_ns)
        if pending:
            return [f"exit_pending: {symbol} already has intent {pending[0].intent_id}"]
        mark = self.market.get(symbol).mark
        intent = decision.intent
        intent.intent_id = policy.intent_id_for(signal_id)
        intent.symbol = symbol
        intent.side = action.side
        intent.kind = risk_pb2.INTENT_KIND_EXIT
        intent.order_type = risk_pb2.ORDER_TYPE_MARKET
        intent.quantity = abs(position)  # the whole position; execution applies the venue's lot filter
        intent.signal_id = signal_id
        intent.created_time_ns = now_ns
        intent.reference_price = mark
        self.ledger.add_pending(Pending(intent.intent_id, symbol, action.side, True, abs(position), mark, now_ns))
        decision.approved = True
        return [*action.reasons, "approved: exit" + (" while halted (reducing risk)" if self.halted else "")]

    def _entry(
        self,
        ctx: checks.Context,
        symbol: str,
        action: policy.Action,
        signal: signal_pb2.Signal,
        decision: risk_pb2.RiskDecision,
        now_ns: int,
    ) -> list[str]:
        side, signal_id = action.side, signal.signal_id
        reasons: list[str] = []
        if self.halted:
            reasons.append(f"halted: {self.halt_reason}")
        reasons.extend(checks.entry_guard_reasons(ctx, symbol, side))
        if reasons:
            return reasons
        reference = entry_reference(self.market.get(symbol), side, self.settings.entry_order_type)
        ttl = self.settings.pending_intent_ttl_ns
        filt = self.filter_for(symbol)
        sizing = policy.size_entry(
            reference,
            self.ledger.equity,
            self.limits,
            self.limits.max_symbol_notional - self.ledger.symbol_exposure(symbol, now_ns, ttl),
            self.limits.max_gross_exposure - self.ledger.gross_exposure(now_ns, ttl),
            filt,
            policy.edge_fraction(action.prediction, signal, self.settings, self.limits.risk_fraction),
        )
        if sizing.reason:
            return [sizing.reason]
        intent = decision.intent
        intent.intent_id = policy.intent_id_for(signal_id)
        intent.symbol = symbol
        intent.side = side
        intent.kind = risk_pb2.INTENT_KIND_ENTRY
        intent.quantity = sizing.quantity
        intent.signal_id = signal_id
        intent.created_time_ns = now_ns
        intent.reference_price = reference
        shape_entry(intent, self.settings, self.limits, filt, action.prediction)
        self.ledger.add_pending(Pending(intent.intent_id, symbol, side, False, sizing.quantity, reference, now_ns))
        decision.approved = True
        return [entry_approval(symbol, side, sizing, action.prediction)]

    def review(self, intent: risk_pb2.OrderIntent, now_ns: int) -> risk_pb2.RiskDecision:
        """A manual order: every gate, limit and guard, no sizing. Raises InvalidIntentError for nonsense."""
        validate_intent(intent)
        previous = self.decisions.for_source(intent.intent_id)
        if previous is not None:
            return previous
        self.counters.reviews += 1
        decision = risk_pb2.RiskDecision(
            decision_id=policy.decision_id_for("review", intent.intent_id),
            symbol=intent.symbol,
            signal_id=intent.signal_id,
            decided_time_ns=now_ns,
        )
        reasons = self._review_into(intent, decision, now_ns)
        return self._record(intent.intent_id, decision, reasons)

    def _review_into(self, intent: risk_pb2.OrderIntent, decision: risk_pb2.RiskDecision, now_ns: int) -> list[str]:
        ctx = self.ctx(now_ns)
        symbol = intent.symbol
        gates = checks.fail_closed_reasons(ctx, symbol)
        if gates:
            return gates
        pending_exit = sum(p.qty for p in self._pending(symbol, exit_=True, now_ns=now_ns))
        closing = Closing.of(intent, self.ledger.position(symbol), pending_exit)
        kind = closing.kind(intent)
        reference = review_reference(intent, self.market.get(symbol))
        if kind == risk_pb2.INTENT_KIND_EXIT:
            refused = closing.exit_refusal(intent)
            if refused:
                return refused
            reasons = ["approved: manual exit" + (" while halted (reducing risk)" if self.halted else "")]
        else:
            refused = self._manual_entry_refusals(ctx, intent, closing, reference)
            if refused:
                return refused
            reasons = [f"approved: manual entry notional {intent.quantity * reference:.2f}"]
        decision.intent.CopyFrom(intent)
        decision.intent.kind = kind
        decision.intent.reference_price = reference
        decision.intent.created_time_ns = intent.created_time_ns or now_ns
        exit_ = kind == risk_pb2.INTENT_KIND_EXIT
        self.ledger.add_pending(
            Pending(intent.intent_id, symbol, intent.side, exit_, intent.quantity, reference, now_ns)
        )
        decision.approved = True
        return reasons

    def _manual_entry_refusals(
        self, ctx: checks.Context, intent: risk_pb2.OrderIntent, closing: Closing, reference: float
    ) -> list[str]:
        """Every reason a manual entry is refused: the halt, the symbol's state, shorts, guards and caps."""
        symbol = intent.symbol
        reasons: list[str] = []
        if self.halted:
            reasons.append(f"halted: {self.halt_reason}")
        if self.trading.refusal(symbol):
            reasons.append(self.trading.refusal(symbol))
        reasons.extend(closing.short_refusal(intent, self.settings.allow_short))
        reasons.extend(checks.entry_guard_reasons(ctx, symbol, intent.side))
        reasons.extend(checks.notional_cap_reasons(ctx, symbol, intent.quantity * reference))
        return reasons

    def _pending(self, symbol: str, exit_: bool, now_ns: int) -> list[Pending]:
        """Approved intents on `symbol` not done yet: its exits, or its entries."""
        live = self.ledger.live_pending(now_ns, self.settings.pending_intent_ttl_ns)
        return [p for p in live if p.symbol == symbol and p.exit == exit_]

    def _record(self, source_id: str, decision: risk_pb2.RiskDecision, reasons: list[str]) -> risk_pb2.RiskDecision:
        decision.reasons.extend(reasons)
        if decision.approved:
            self.counters.approved += 1
        else:
            self.counters.rejected += 1
            decision.ClearField("intent")
        if source_id:
            self.decisions.add(source_id, decision)
        return decision

    # -- status --------------------------------------------------------------------------------------
    def status(self, now_ns: int, symbols: list[str]) -> risk_pb2.RiskServiceGetStatusResponse:
        ctx = self.ctx(now_ns)
        led = self.ledger
        exposures = led.exposures(now_ns, self.settings.pending_intent_ttl_ns)
        return risk_pb2.RiskServiceGetStatusResponse(
            halted=self.halted,
            halt_reason=self.halt_reason,
            equity=led.equity,
            pnl_today=led.pnl_today,
            drawdown=led.drawdown,
            gross_exposure=sum(exposures.values()),
            limits=checks.limit_statuses(ctx, symbols),
            signals_seen=self.counters.signals_seen,
            approved=self.counters.approved,
            rejected=self.counters.rejected,
            last_market_data_ns=max((m.mark_ns for m in self.market.symbols.values()), default=0),
            last_execution_report_ns=led.last_report_ns,
            symbol_exposure=exposures,
            execution_reports_seen=led.reports_seen,
            symbol_states=self.trading.to_pb(),
            account_state=self.account_state(),
        )

    def account_state(self) -> risk_pb2.SymbolTradingState:
        """HALTED while the kill switch is on (its reason as the code), else the account scope's state."""
        state = self.trading.scope(ACCOUNT).to_pb(ACCOUNT)
        if self.halted:
            state.state = risk_pb2.TRADING_STATE_HALTED
            state.reason_code = self.halt.limit or "halted"
            state.detail = self.halt_reason
            state.since_ns = self.halt.since_ns
        return state

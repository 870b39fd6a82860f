"""The risk service: the engine on the bus, and the quantumedge.v1.RiskService gRPC API.

Consumes signals, execution reports, top of book, depth and control events; publishes a signed decision
for every signal on risk.decisions.v1, signed halt state and limits on the compacted control.v1, and audits
on audit.v1. On start it rebuilds halt and limits from the newest *valid* control.v1 records and PnL, peak
and streaks from execution.reports.v1, so a restarted halted risk service stays halted. A control record
that fails verification (forged, replayed, stale, a tombstone) is dead-lettered and audited, and risk
publishes its current state again so the compacted topic's last word under that key stays genuine.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import Message

from quantumedge.risk import checkpoint
from quantumedge.risk import moderator as moderation
from quantumedge.risk.checkpointing import Checkpointer
from quantumedge.risk.engine import Decided, InvalidIntentError, RiskEngine, StillBreachedError
from quantumedge.risk.limit_config import LIMIT_FIELDS, InvalidLimitsError, merge_limits
from quantumedge.risk.limits import Breach
from quantumedge.risk.moderator_client import ModeratorClient, moderator_for
from quantumedge.risk.reasons import matches, primary_code
from quantumedge.risk.state_records import restore_states, state_event
from quantumedge.risk.state_rpcs import TradingStateRpcs, actor_of
from quantumedge.risk.trading_state import ACCOUNT, ScopeStatus, scope_of_key, state_key
from quantumedge.shared import bounds, topics
from quantumedge.shared.admission import (
    HALT_KEY,
    LIMITS_KEY,
    ControlGate,
    StoredRecord,
    expected_payload,
    stored_state,
)
from quantumedge.shared.audit import audit_event, publish_audit, refusal_audit
from quantumedge.shared.bus import Bus, Record
from quantumedge.shared.bus.loop import ConsumerLoop, Refused, admit
from quantumedge.shared.grpc_server import ServiceBinding, refuse_invalid
from quantumedge.shared.keyring import keyring_for
from quantumedge.shared.logs import get_logger
from quantumedge.shared.observe import Gauges
from quantumedge.shared.service import ServiceBase
from quantumedge.shared.telemetry import meter
from quantumedge.v1 import (
    common_pb2,
    control_pb2,
    execution_pb2,
    market_pb2,
    risk_pb2,
    risk_pb2_grpc,
    signal_pb2,
)

if TYPE_CHECKING:
    from quantumedge.settings import Settings  # the root the runner hands in; no run-time import

log = get_logger(__name__)
_meter = meter("risk")
_decisions = _meter.create_counter("qe.risk.decisions", description="risk decisions by outcome")
_halts = _meter.create_counter("qe.risk.halts", description="halts by cause")
_tick_to_decision = _meter.create_histogram(
    "qe.risk.tick_to_decision", unit="ms", description="market event time to the risk decision on its signal"
)
# Trading state as a number for dashboards: 0 ACTIVE, 1 REDUCING (exits only), 2 HALTED.
STATE_VALUE = {"ACTIVE": 0, "REDUCING": 1, "HALTED": 2}
_gauges = Gauges("risk")
_gauges.gauge("qe.risk.equity", lambda svc: [(svc.snapshot().equity, {})], "equity (quote)", "quote")
_gauges.gauge("qe.risk.pnl_today", lambda svc: [(svc.snapshot().pnl_today, {})], "PnL since UTC midnight", "quote")
_gauges.gauge("qe.risk.drawdown", lambda svc: [(svc.snapshot().drawdown, {})], "fraction below peak equity")
_gauges.gauge(
    "qe.risk.limit_headroom",
    lambda svc: [(lim.headroom, {"limit": lim.name}) for lim in svc.snapshot().limits],
    "room left before each limit (threshold - value; disabled limits report 0)",
)
_gauges.gauge(
    "qe.risk.limit_breached",
    lambda svc: [(float(lim.breached), {"limit": lim.name}) for lim in svc.snapshot().limits],
    "1 while a limit is breached",
)
_gauges.gauge(
    "qe.risk.trading_state",
    lambda svc: [(STATE_VALUE[svc.trading_state()], {"scope": "account"})],
    "0 ACTIVE, 1 REDUCING, 2 HALTED",
)

AUTO_ACTOR = common_pb2.Actor(subject="risk", source="automatic")
REASSERT_ACTOR = common_pb2.Actor(subject="risk", source="re-assert")


class _NotRebuiltError(BaseException):
    """Escapes the consumer loop's per-record error handling on purpose (no dead letter, no commit)."""


class RiskService(ServiceBase):
    name = "risk"

    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        clock: Callable[[], int] = time.time_ns,
        moderator: ModeratorClient | None = None,
    ) -> None:
        super().__init__(settings, bus)
        self.clock = clock
        self.engine = RiskEngine(settings.risk)
        self.symbols = list(settings.symbols)
        # One lock around the engine: the consumer thread and gRPC threads both use it.
        self.lock = threading.RLock()
        self._ready = threading.Event()
        self._rebuilt = False
        self.rebuild_skipped: dict[str, int] = {}
        self._limits_time_ns = 0
        self._loop: ConsumerLoop | None = None
        self._control_loop: ConsumerLoop | None = None
        self._snapshot: tuple[float, risk_pb2.RiskServiceGetStatusResponse] | None = None
        # Equity history for operators (the console's curve): one point a second at most, bounded.
        self.equity_curve: deque[risk_pb2.EquityPoint] = deque(maxlen=settings.risk.decision_index_size)
        # Risk signs what it publishes and verifies control records before applying them (ConfigError here
        # when no key can be had: risk never publishes an unsigned decision).
        self.keyring = keyring_for(settings, self.name)
        self.control_gate = ControlGate(self.keyring)
        # Every consumed price is checked against the last good one for its symbol (shared/bounds).
        self.market_guard = bounds.MarketGuard()
        self._audit_refusal = refusal_audit(bus, self.name)
        # The signed ledger checkpoint: start-up restores it and replays only the reports after it.
        self.checkpointer = Checkpointer(bus, self.keyring, settings.risk, clock)
        self.rebuild_from = ""  # "checkpoint" or "reports" once rebuilt
        self.rebuild_read = 0  # records of execution.reports.v1 the start-up read
        # The optional LLM moderator of entries (None when disabled; its key from Vault or risk does not start).
        self.moderator = moderator or moderator_for(settings)
        self.servicer = RiskServicer(self)
        _gauges.add_owner(self)

    # -- lifecycle -----------------------------------------------------------------------------------
    def grpc_services(self) -> list[ServiceBinding]:
        return [(risk_pb2_grpc.add_RiskServiceServicer_to_server, self.servicer, "quantumedge.v1.RiskService")]

    def start(self) -> None:
        # Join the group first (its position is fixed once assigned), then rebuild from the topics' history;
        # handlers wait for the rebuild, and reports seen by both paths are deduplicated by report id.
        # Two members of the one group (its ACL is unchanged): control records alone in one thread, so a halt,
        # new limits or a trading state never wait behind signals, reports or a backlog of market data in the
        # other. Each loop commits only what it handled; the engine's lock serialises them. Control joins first.
        self._control_loop = ConsumerLoop(
            self.bus,
            group=self.name,
            handlers={topics.CONTROL: self._on_control},
            on_refused=self._on_refused,
            thread_name=f"{self.name}-control",
        )
        self._control_loop.start()
        self._loop = ConsumerLoop(
            self.bus,
            group=self.name,
            handlers={
                topics.SIGNALS: self._on_signal,
                topics.REPORTS: self._on_report,
                topics.BOOK: self._on_market,
                topics.DEPTH: self._on_market,
            },
            on_refused=self._on_refused,
            thread_name=f"{self.name}-flow",
        )
        self._loop.start()
        try:
            self.rebuild()
            self._rebuilt = True
        finally:
            self._ready.set()

    def stop(self) -> None:
        self._ready.set()
        for loop in (self._control_loop, self._loop):
            if loop is not None:
                loop.stop()
        if self._rebuilt:
            self._checkpoint_at_stop()
        self.bus.flush()
        self.keyring.close()
        if self.moderator is not None:
            self.moderator.close()

    def _checkpoint_at_stop(self) -> None:
        """The ledger as the loop left it, so the next start replays nothing it already folded in."""
        try:
            with self.lock:
                self.checkpointer.write(
                    self.engine.ledger, self.engine.halt.acknowledged_ns, self.engine.limits.order_window_ns
                )
        except Exception as exc:  # the next start replays more; it never loses anything for a missing checkpoint
            log.warning("risk checkpoint not written at stop", extra={"error": repr(exc)})

    def _write_checkpoint(self) -> None:
        """Lock held."""
        engine = self.engine
        self.checkpointer.write(engine.ledger, engine.halt.acknowledged_ns, engine.limits.order_window_ns)

    def healthy(self) -> bool:
        return all(loop.alive for loop in (self._control_loop, self._loop) if loop is not None)

    def status_line(self) -> dict[str, Any]:
        with self.lock:
            c = self.engine.counters
            return {
                "halted": self.engine.halted,
                "signals": c.signals_seen,
                "approved": c.approved,
                "rejected": c.rejected,
                "equity": round(self.engine.ledger.equity, 2),
            }

    def snapshot(self, max_age_s: float = 0.5) -> risk_pb2.RiskServiceGetStatusResponse:
        """GetStatus, reused for max_age_s so one scrape of several gauges computes it once."""
        cached = self._snapshot
        if cached is not None and time.monotonic() - cached[0] < max_age_s:
            return cached[1]
        with self.lock:
            status = self.engine.status(self.clock(), self.symbols)
        self._snapshot = (time.monotonic(), status)
        return status

    def _sample_equity(self, now: int) -> None:
        """Called with the lock held, after the ledger moved."""
        if self.equity_curve and now - self.equity_curve[-1].time_ns < 1_000_000_000:
            return
        led = self.engine.ledger
        self.equity_curve.append(risk_pb2.EquityPoint(time_ns=now, equity=led.equity, drawdown=led.drawdown))

    def trading_state(self) -> str:
        """The account's state: HALTED, REDUCING (exits only) or ACTIVE."""
        if self.engine.halted:
            return "HALTED"
        return "REDUCING" if self.engine.trading.scope(ACCOUNT).causes else "ACTIVE"

    def rebuild(self) -> None:
        """Halt state and limits from control.v1, then PnL, peak, streaks and positions from execution reports."""
        records = self.bus.read_all(topics.CONTROL, timeout_s=self.settings.risk.rebuild_timeout_s)
        stored = stored_state(
            (StoredRecord((r.key or b"").decode(errors="replace"), r.value, (r.partition, r.offset)) for r in records),
            self.control_gate,
        )
        for rec, verdict in stored.refused:
            log.warning(
                "stored control record refused",
                extra={"key": rec.key, "position": rec.position, "code": verdict.code, "detail": verdict.detail},
            )
        latest = stored.latest
        # The last record under a key, by offset, is what compaction keeps: when it is not the valid state we use,
        # publish that state again so a later start (or execution) reads a genuine one.
        last_by_key = {(r.key or b"").decode(errors="replace"): r for r in records}
        stale_keys = [
            k
            for k in last_by_key
            if expected_payload(k) and (k not in latest or not _same_event(last_by_key[k], latest[k]))
        ]
        cp = self.checkpointer.load() if self.checkpointer.enabled else None
        tail = self.checkpointer.read_reports(dict(cp.report_offsets) if cp is not None else {})
        self.rebuild_skipped, self.rebuild_read = tail.skipped, tail.read
        self.rebuild_from = "checkpoint" if cp is not None else "reports"
        now = self.clock()
        with self.lock:
            if LIMITS_KEY in latest and latest[LIMITS_KEY].HasField("limits"):
                try:
                    self.engine.set_limits(latest[LIMITS_KEY].limits)
                    self._limits_time_ns = latest[LIMITS_KEY].time_ns
                except InvalidLimitsError as exc:
                    log.error("stored limits invalid, keeping configured ones", extra={"error": str(exc)})
            acknowledged = 0
            if HALT_KEY in latest and latest[HALT_KEY].HasField("halt"):
                event = latest[HALT_KEY]
                self.engine.set_halt(event.halt, event.reason)
                acknowledged = event.halt.acknowledged_ns
            elif HALT_KEY in stored.unverifiable:
                # Records exist under "halt" but none verifies: the state is unknown, so fail closed.
                reason = f"halt state on control.v1 failed verification ({stored.unverifiable[HALT_KEY]})"
                self.engine.halt_now(reason, False, False, now)
                self.publish_audit(AUTO_ACTOR, "Rebuild", None, f"halted: {reason}", reason)
                log.error("stored halt state unverifiable: halted until an operator resumes", extra={"why": reason})
            for scope in restore_states(self.engine.trading, stored, now):
                log.error(
                    "stored trading state unverifiable: exits only until an operator activates", extra={"scope": scope}
                )
            if cp is not None:
                checkpoint.restore(self.engine.ledger, cp)
                # An acknowledgement the checkpoint already reflects must not wipe the losses that came after it.
                acknowledged = acknowledged if acknowledged > cp.acknowledged_ns else 0
            self.engine.ledger.replay(tail.reports, acknowledged)
            self.engine.ledger.roll_day(now)
            breach = self.engine.check_auto_halt(now)
            if breach is not None:
                self._publish_auto_halt(breach)
            for key in stale_keys:
                self._reassert(key)
            self.publish_states(AUTO_ACTOR, "trading state at start-up")
            log.info(
                "risk state rebuilt",
                extra={
                    "halted": self.engine.halted,
                    "from": self.rebuild_from,
                    "reports": tail.read,
                    "equity": round(self.engine.ledger.equity, 2),
                    "loss_streak": self.engine.ledger.loss_streak,
                },
            )
        self.bus.flush()

    # -- handlers (consumer thread) ------------------------------------------------------------------
    def _wait_ready(self) -> None:
        self._ready.wait()
        if not self._rebuilt:
            # Start-up failed: end the loop without committing, so nothing is consumed on a state never rebuilt.
            raise _NotRebuiltError("risk state was never rebuilt; records left uncommitted")

    def _on_signal(self, signal: signal_pb2.Signal, _record: Record) -> None:
        self._wait_ready()
        admit(bounds.check_signal(signal))
        with self.lock:
            now = self.clock()
            repeat = self.engine.decisions.for_source(signal.signal_id) is not None
            decided = self.engine.on_signal(signal, now)
            self.publish_states(AUTO_ACTOR)
        # A redelivered signal: its decision is on the bus already (a second copy reads as a replay).
        self._publish_decided([d for d in decided if not (repeat and d[0].signal_id == signal.signal_id)], now)

    def _publish_decided(self, decided: list[Decided], now: int) -> None:
        """Publish decisions in order: entries through the moderator when there is one."""
        for signal, decision in decided:
            with self.lock:
                fills = self.moderator.recent_fills() if self.moderator else []
                context = moderation.prepare(self.engine, signal, decision, fills, now) if self.moderator else None
                if context is None:
                    self.publish_decision(decision)
            if context is not None and self.moderator is not None:
                # Outside the lock, bounded by the moderator's budget: gRPC calls are not held by the model.
                outcome = self.moderator.review(context)
                with self.lock:
                    moderation.settle(self.engine, decision, outcome)
                    self.publish_decision(decision)
            labels = {"approved": decision.approved, "reason": primary_code(decision), "symbol": decision.symbol}
            _decisions.add(1, labels)
            if signal.event_time_ns > 0:
                _tick_to_decision.record(max(0.0, (now - signal.event_time_ns) / 1e6), {"symbol": decision.symbol})

    def _on_report(self, report: execution_pb2.ExecutionReport, record: Record) -> None:
        self._wait_ready()
        if self.checkpointer.seen(record):
            return  # folded in (or skipped) by the start-up read already
        self.checkpointer.note(record)
        admit(bounds.check_report(report))
        with self.lock:
            now = self.clock()
            breach = self.engine.on_report(report, now)
            if self.checkpointer.due(now):
                self.checkpointer.write(
                    self.engine.ledger, self.engine.halt.acknowledged_ns, self.engine.limits.order_window_ns
                )
            # Execution heartbeats arrive here when the market feed has stalled: held signals time out.
            expired = self.engine.expire_held(now)
            self.publish_states(AUTO_ACTOR)
            if self.moderator is not None:
                self.moderator.note_report(report)
            self._sample_equity(now)
            if breach is not None:
                self._publish_auto_halt(breach)
        self._publish_decided(expired, now)

    def _on_market(self, event: market_pb2.MarketEvent, _record: Record) -> None:
        self._wait_ready()
        with self.lock:
            admit(self.market_guard.admit(event))
            now = self.clock()
            breach = self.engine.on_market(event, now)
            released = self.engine.release_held(event.symbol, now)
            self.publish_states(AUTO_ACTOR)
            self._sample_equity(now)
            if breach is not None:
                self._publish_auto_halt(breach)
        self._publish_decided(released, now)

    def _on_control(self, event: control_pb2.ControlEvent, record: Record) -> None:
        self._wait_ready()
        key = (record.key or b"").decode(errors="replace")
        # Our own publications come back as repeats (the gate noted them), copies of anything as replays. Under
        # the lock: this thread is not the one publishing our states (note_own), and check-then-set must not race.
        with self.lock:
            verdict = self.control_gate.check(event, key, (record.partition, record.offset))
        if not verdict.ok:
            raise Refused(verdict.code, verdict.detail)
        if verdict.repeat:
            return
        with self.lock:
            kind = event.WhichOneof("payload")
            if kind == "halt":
                if self.engine.apply_halt_event(event.halt, event.reason):
                    log.info("halt state from control topic", extra={"halted": event.halt.halted})
            elif kind == "limits" and event.time_ns >= self._limits_time_ns:
                self.engine.set_limits(event.limits)  # InvalidLimitsError -> dead-lettered with its reason
                self._limits_time_ns = event.time_ns
            elif kind == "trading_state":
                # Another instance's (or an older self's) record, newer than ours (the gate checked): taken whole.
                self.engine.trading.replace(scope_of_key(key) or ACCOUNT, ScopeStatus.from_pb(event.trading_state))

    def _on_refused(self, record: Record, code: str, detail: str) -> None:
        """A refused record: audited; when it sat under a state key of control.v1, our state goes out again."""
        self._audit_refusal(record, code, detail)
        key = (record.key or b"").decode(errors="replace")
        if record.topic == topics.CONTROL and expected_payload(key) and self._rebuilt:
            with self.lock:
                self._reassert(key)

    def _reassert(self, key: str) -> None:
        """Publish the halt state or limits in force again (signed, newer than whatever was written over it)."""
        reason = "state re-asserted after an invalid record under this key"
        if key == HALT_KEY:
            self.publish_halt_state(REASSERT_ACTOR, self.engine.halt_reason or reason)
        elif scope_of_key(key) is not None:
            scope = scope_of_key(key) or ACCOUNT
            self.publish_control(key, state_event(self.engine.trading, scope, REASSERT_ACTOR, reason))
        else:
            event = control_pb2.ControlEvent(actor=REASSERT_ACTOR, reason=reason, limits=self.engine.limits)
            self._limits_time_ns = self.publish_control(LIMITS_KEY, event).time_ns
        log.warning("control state re-asserted", extra={"key": key})

    # -- publishing ----------------------------------------------------------------------------------
    def publish_decision(self, decision: risk_pb2.RiskDecision) -> None:
        """Signed for risk.decisions.v1 under its symbol: the ReviewOrder answer carries the same signature."""
        self.keyring.sign(decision, topics.DECISIONS, decision.symbol)
        self.bus.publish(topics.DECISIONS, decision.symbol, decision)

    def publish_control(self, key: str, event: control_pb2.ControlEvent) -> control_pb2.ControlEvent:
        event.event_id = event.event_id or str(uuid.uuid4())
        event.time_ns = event.time_ns or self.clock()
        self.control_gate.note_own(key, event)
        self.keyring.sign(event, topics.CONTROL, key)
        self.bus.publish(topics.CONTROL, key, event)
        return event

    def publish_audit(
        self, actor: common_pb2.Actor, method: str, request: Message | None, outcome: str, reason: str = ""
    ) -> None:
        """On audit.v1 (never on the compacted control.v1, which every start-up reads whole)."""
        event = audit_event(
            self.name, method, True, actor, outcome, reason=reason, request=request, time_ns=self.clock()
        )
        publish_audit(self.bus, event)

    def publish_states(self, actor: common_pb2.Actor, reason: str = "") -> list[str]:
        """Every scope whose trading state changed since the last call, on control.v1 (lock held)."""
        changed = self.engine.trading.changed()
        for scope in changed:
            status = self.engine.trading.scope(scope)
            why = reason or (f"automatic: {status.reason_code}" if status.causes else "automatic: conditions cleared")
            self.publish_control(state_key(scope), state_event(self.engine.trading, scope, actor, why))
            if actor is AUTO_ACTOR:
                state = status.state.name
                self.publish_audit(actor, "AutoState", None, f"{state_key(scope)} {state}", why)
                log.warning("trading state changed", extra={"scope": scope or "account", "state": state, "why": why})
        return changed

    def publish_halt_state(self, actor: common_pb2.Actor, reason: str) -> None:
        self.publish_control(
            HALT_KEY,
            control_pb2.ControlEvent(actor=actor, reason=reason, halt=self.engine.halt, time_ns=self.clock()),
        )

    def _publish_auto_halt(self, breach: Breach) -> None:
        reason = self.engine.halt_reason
        log.warning(
            "risk limit breached: trading halted",
            extra={"limit": breach.limit, "value": breach.value, "threshold": breach.threshold},
        )
        _halts.add(1, {"cause": breach.limit})
        self.publish_halt_state(AUTO_ACTOR, reason)
        self.publish_audit(AUTO_ACTOR, "AutoHalt", None, f"halted: {breach.describe()}", reason)


class RiskServicer(TradingStateRpcs, risk_pb2_grpc.RiskServiceServicer):
    def __init__(self, service: RiskService) -> None:
        self.svc = service

    @property
    def engine(self) -> RiskEngine:
        return self.svc.engine

    def GetStatus(self, request: risk_pb2.RiskServiceGetStatusRequest, context: grpc.ServicerContext) -> Any:
        with self.svc.lock:
            return self.engine.status(self.svc.clock(), self.svc.symbols)

    def GetLimits(self, request: risk_pb2.GetLimitsRequest, context: grpc.ServicerContext) -> Any:
        with self.svc.lock:
            return risk_pb2.GetLimitsResponse(limits=self.engine.limits)

    def UpdateLimits(self, request: risk_pb2.UpdateLimitsRequest, context: grpc.ServicerContext) -> Any:
        refuse_invalid(request, context)
        actor = actor_of(context)
        with self.svc.lock:
            error = ""
            if not request.HasField("limits"):
                error = "limits is required (with update_mask naming the fields to change)"
            else:
                try:
                    merged = merge_limits(self.engine.limits, request.limits, list(request.update_mask))
                except InvalidLimitsError as exc:
                    error = str(exc)
            if error:
                self.svc.publish_audit(actor, "UpdateLimits", request, f"invalid: {error}", request.reason)
                self.svc.bus.flush()
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, error)
            self.engine.set_limits(merged)
            event = self.svc.publish_control(
                LIMITS_KEY, control_pb2.ControlEvent(actor=actor, reason=request.reason, limits=merged)
            )
            self.svc._limits_time_ns = event.time_ns
            changed = list(request.update_mask) or list(LIMIT_FIELDS)
            self.svc.publish_audit(actor, "UpdateLimits", request, f"updated: {', '.join(changed)}", request.reason)
        self.svc.bus.flush()
        log.info("limits updated", extra={"actor": actor.subject, "fields": changed})
        return risk_pb2.UpdateLimitsResponse(limits=merged)

    def Halt(self, request: risk_pb2.HaltRequest, context: grpc.ServicerContext) -> Any:
        """Durable first: the halt is in force only once its record is on control.v1 (flushed); when the write
        fails, risk is left exactly as it was and the call fails, so the operator knows to retry."""
        refuse_invalid(request, context)
        actor = actor_of(context)
        reason = request.reason or "operator halt"
        with self.svc.lock:
            before = self._halt_snapshot()
            self.engine.halt_now(reason, request.cancel_open_orders, request.flatten, self.svc.clock())
            self._write_or_restore("halt", before, lambda: self.svc.publish_halt_state(actor, reason), context)
            self.svc.publish_audit(actor, "Halt", request, "halted", reason)
        self.svc.bus.flush()
        _halts.add(1, {"cause": "operator"})
        log.warning("trading halted by operator", extra={"actor": actor.subject, "reason": reason})
        return risk_pb2.HaltResponse(halted=True)

    def _halt_snapshot(self) -> tuple:
        """What Halt and Resume change (lock held): restored as it was when their record cannot be written."""
        halt = control_pb2.HaltState()
        halt.CopyFrom(self.engine.halt)
        ledger = self.engine.ledger
        return (
            halt,
            self.engine.halt_reason,
            dict(self.svc.control_gate.applied_ns),
            ledger.loss_streak,
            ledger.peak_equity,
        )

    def _write_or_restore(
        self, what: str, before: tuple, publish: Callable[[], None], context: grpc.ServicerContext
    ) -> None:
        """Publish and flush the control record; on failure put `before` back and fail the call UNAVAILABLE."""
        try:
            publish()
            self.svc.bus.flush()
        except Exception as exc:
            halt, reason, applied, streak, peak = before
            self.engine.set_halt(halt, reason)
            self.svc.control_gate.applied_ns = applied
            self.engine.ledger.loss_streak, self.engine.ledger.peak_equity = streak, peak
            log.exception(f"{what} record not written: nothing changed")
            context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"the {what} could not be written to {topics.CONTROL} ({type(exc).__name__}): nothing changed, retry",
            )

    def Resume(self, request: risk_pb2.ResumeRequest, context: grpc.ServicerContext) -> Any:
        """Durable first, as Halt: trading resumes only once the record is flushed to control.v1; when the
        write fails, risk stays halted with its loss streak and drawdown peak unacknowledged."""
        refuse_invalid(request, context)
        actor = actor_of(context)
        with self.svc.lock:
            before = self._halt_snapshot()
            try:
                self.engine.resume(self.svc.clock())
            except StillBreachedError as exc:
                self.svc.publish_audit(actor, "Resume", request, f"refused: {exc}", request.reason)
                self.svc.bus.flush()
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
            self._write_or_restore(
                "resume",
                before,
                lambda: self.svc.publish_halt_state(actor, request.reason or "operator resume"),
                context,
            )
            self.svc.publish_audit(actor, "Resume", request, "resumed", request.reason)
        self.svc.bus.flush()
        log.warning("trading resumed by operator", extra={"actor": actor.subject, "reason": request.reason})
        return risk_pb2.ResumeResponse(halted=False)

    def ExplainDecision(self, request: risk_pb2.ExplainDecisionRequest, context: grpc.ServicerContext) -> Any:
        if not request.decision_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "decision_id is required")
        with self.svc.lock:
            decision = self.engine.decisions.get(request.decision_id)
        if decision is None:
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"decision {request.decision_id} not found (unknown, or older than the last "
                f"{self.svc.settings.risk.decision_index_size} decisions)",
            )
        return risk_pb2.ExplainDecisionResponse(decision=decision)

    def ReviewOrder(self, request: risk_pb2.ReviewOrderRequest, context: grpc.ServicerContext) -> Any:
        if not request.HasField("intent"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "intent is required")
        refuse_invalid(request, context, bounds.check_intent(request.intent))
        if self.svc.bus.outage.down:  # an approval that cannot be written is never given
            context.abort(grpc.StatusCode.UNAVAILABLE, "Kafka is down: risk approves nothing until it is back")
        with self.svc.lock:
            repeat = self.engine.decisions.for_source(request.intent.intent_id) is not None
            try:
                decision = self.engine.review(request.intent, self.svc.clock())
            except InvalidIntentError as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            if not repeat:  # the same review asked again gets the same (signed) answer, published once
                self.svc.publish_decision(decision)
        self.svc.bus.flush()
        _decisions.add(
            1,
            {
                "approved": decision.approved,
                "manual": True,
                "reason": primary_code(decision),
                "symbol": decision.symbol,
            },
        )
        return risk_pb2.ReviewOrderResponse(decision=decision)

    def GetEquityCurve(self, request: risk_pb2.GetEquityCurveRequest, context: grpc.ServicerContext) -> Any:
        with self.svc.lock:
            points = list(self.svc.equity_curve)
        if request.max_points:
            points = points[-request.max_points :]
        return risk_pb2.GetEquityCurveResponse(points=points)

    def ListDecisions(self, request: risk_pb2.ListDecisionsRequest, context: grpc.ServicerContext) -> Any:
        if request.outcome not in ("", "approved", "rejected"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "outcome must be approved, rejected or empty")
        limit = request.limit or 50
        with self.svc.lock:
            recent = self.engine.decisions.recent()
        chosen = [d for d in recent if matches(d, request.symbol, request.outcome, request.reason)][:limit]
        return risk_pb2.ListDecisionsResponse(decisions=chosen)


def _same_event(record: Record, event: control_pb2.ControlEvent) -> bool:
    try:
        return control_pb2.ControlEvent.FromString(record.value or b"").event_id == event.event_id
    except Exception:
        return False

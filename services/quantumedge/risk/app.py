"""Risk's one wiring: what risk does with a signal, a report, a market event or a control record, and what
it publishes then. The service (risk/service.py) runs it on the bus; the backtester runs the same object
on an in-memory outbox, so the two cannot part.

No threads, locks, gRPC or Kafka and no wall clock: time comes in as now_ns, records leave through
`publish` (Bus.publish's signature), and metrics and logs through an `AppObserver`. The caller serialises
calls (the service holds its lock). Decisions the handlers return are published with `publish_decided`
(the service may moderate an entry before that; the LLM moderator is I/O and stays in the service).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Protocol

from google.protobuf.message import Message

from quantumedge.risk.domain.engine import Decided, RiskEngine
from quantumedge.risk.domain.limits import Breach
from quantumedge.risk.domain.state_records import state_event
from quantumedge.risk.domain.trading_state import ACCOUNT, ScopeStatus, scope_of_key, state_key
from quantumedge.risk.settings import RiskSettings
from quantumedge.shared import bounds, topics
from quantumedge.shared.admission import HALT_KEY, LIMITS_KEY, ControlGate
from quantumedge.shared.audit import audit_event, publish_audit
from quantumedge.shared.signing import Keyring, Verdict
from quantumedge.v1 import common_pb2, control_pb2, execution_pb2, market_pb2, risk_pb2, signal_pb2

AUTO_ACTOR = common_pb2.Actor(subject="risk", source="automatic")
REASSERT_ACTOR = common_pb2.Actor(subject="risk", source="re-assert")

Publish = Callable[[str, "str | None", Message], None]


class AppObserver(Protocol):
    """What risk reports about itself (the service records OpenTelemetry metrics and logs; default: nothing)."""

    def decided(self, signal: signal_pb2.Signal, decision: risk_pb2.RiskDecision, now_ns: int) -> None: ...

    def halted(self, breach: Breach, now_ns: int) -> None: ...

    def state_changed(self, scope: str, state: str, why: str) -> None: ...


class NoObserver:
    def decided(self, signal: signal_pb2.Signal, decision: risk_pb2.RiskDecision, now_ns: int) -> None:
        pass

    def halted(self, breach: Breach, now_ns: int) -> None:
        pass

    def state_changed(self, scope: str, state: str, why: str) -> None:
        pass


class RiskApp:
    name = "risk"

    def __init__(
        self,
        settings: RiskSettings,
        keyring: Keyring,
        publish: Publish,
        observer: AppObserver | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.engine = RiskEngine(settings)
        self.keyring = keyring
        # Verifies control records before they are applied, and knows our own publications (note_own).
        self.control_gate = ControlGate(keyring)
        self.publish = publish
        self.observer: AppObserver = observer or NoObserver()
        self.new_id = new_id
        self.limits_time_ns = 0
        # Every consumed price is checked against the last good one for its symbol (shared/bounds).
        self.market_guard = bounds.MarketGuard()

    # -- handlers ------------------------------------------------------------------------------------
    def on_signal(self, signal: signal_pb2.Signal, now_ns: int) -> list[Decided]:
        """The decisions to publish now (a held entry waits for its book; a redelivery's decision is out already)."""
        repeat = self.engine.decisions.for_source(signal.signal_id) is not None
        decided = self.engine.on_signal(signal, now_ns)
        self.publish_states(AUTO_ACTOR, now_ns)
        return [d for d in decided if not (repeat and d[0].signal_id == signal.signal_id)]

    def on_report(self, report: execution_pb2.ExecutionReport, now_ns: int) -> list[Decided]:
        """The report into the ledger; an auto halt published; held signals that timed out, to publish."""
        breach = self.engine.on_report(report, now_ns)
        # Execution heartbeats arrive here when the market feed has stalled: held signals time out.
        expired = self.engine.expire_held(now_ns)
        self.publish_states(AUTO_ACTOR, now_ns)
        if breach is not None:
            self.publish_auto_halt(breach, now_ns)
        return expired

    def admit_market(self, event: market_pb2.MarketEvent) -> bounds.Problem | None:
        """The market guard's word on an event (a problem: dead-lettered, never given to `on_market`)."""
        return self.market_guard.admit(event)

    def on_market(self, event: market_pb2.MarketEvent, now_ns: int) -> list[Decided]:
        """Top of book or depth (already admitted by the market guard); held signals the book caught up with."""
        breach = self.engine.on_market(event, now_ns)
        released = self.engine.release_held(event.symbol, now_ns)
        self.publish_states(AUTO_ACTOR, now_ns)
        if breach is not None:
            self.publish_auto_halt(breach, now_ns)
        return released

    def on_control(self, event: control_pb2.ControlEvent, key: str, position: tuple[int, int]) -> Verdict:
        """A control.v1 record, applied when it verifies and is new; the verdict says why not otherwise.
        InvalidLimitsError propagates (the service dead-letters it with its reason)."""
        verdict = self.control_gate.check(event, key, position)
        if not verdict.ok or verdict.repeat:
            return verdict
        kind = event.WhichOneof("payload")
        if kind == "halt":
            self.engine.apply_halt_event(event.halt, event.reason)
        elif kind == "limits" and event.time_ns >= self.limits_time_ns:
            self.engine.set_limits(event.limits)
            self.limits_time_ns = event.time_ns
        elif kind == "trading_state":
            # Another instance's (or an older self's) record, newer than ours (the gate checked): taken whole.
            self.engine.trading.replace(scope_of_key(key) or ACCOUNT, ScopeStatus.from_pb(event.trading_state))
        return verdict

    # -- publishing ----------------------------------------------------------------------------------
    def publish_decided(self, decided: list[Decided], now_ns: int) -> None:
        for signal, decision in decided:
            self.publish_decision(decision)
            self.observer.decided(signal, decision, now_ns)

    def publish_decision(self, decision: risk_pb2.RiskDecision) -> None:
        """Signed for risk.decisions.v1 under its symbol: the ReviewOrder answer carries the same signature."""
        self.keyring.sign(decision, topics.DECISIONS, decision.symbol)
        self.publish(topics.DECISIONS, decision.symbol, decision)

    def publish_control(self, key: str, event: control_pb2.ControlEvent, now_ns: int) -> control_pb2.ControlEvent:
        event.event_id = event.event_id or self.new_id()
        event.time_ns = event.time_ns or now_ns
        self.control_gate.note_own(key, event)
        self.keyring.sign(event, topics.CONTROL, key)
        self.publish(topics.CONTROL, key, event)
        return event

    def publish_audit(
        self, actor: common_pb2.Actor, method: str, request: Message | None, outcome: str, reason: str, now_ns: int
    ) -> None:
        """On audit.v1 (never on the compacted control.v1, which every start-up reads whole)."""
        event = audit_event(self.name, method, True, actor, outcome, reason=reason, request=request, time_ns=now_ns)
        publish_audit(_Outbox(self.publish), event)

    def publish_states(self, actor: common_pb2.Actor, now_ns: int, reason: str = "") -> list[str]:
        """Every scope whose trading state changed since the last call, on control.v1."""
        changed = self.engine.trading.changed()
        for scope in changed:
            status = self.engine.trading.scope(scope)
            why = reason or (f"automatic: {status.reason_code}" if status.causes else "automatic: conditions cleared")
            self.publish_control(state_key(scope), state_event(self.engine.trading, scope, actor, why), now_ns)
            if actor is AUTO_ACTOR:
                state = status.state.name
                self.publish_audit(actor, "AutoState", None, f"{state_key(scope)} {state}", why, now_ns)
                self.observer.state_changed(scope, state, why)
        return changed

    def publish_halt_state(self, actor: common_pb2.Actor, reason: str, now_ns: int) -> None:
        event = control_pb2.ControlEvent(actor=actor, reason=reason, halt=self.engine.halt, time_ns=now_ns)
        self.publish_control(HALT_KEY, event, now_ns)

    def publish_auto_halt(self, breach: Breach, now_ns: int) -> None:
        reason = self.engine.halt_reason
        self.observer.halted(breach, now_ns)
        self.publish_halt_state(AUTO_ACTOR, reason, now_ns)
        self.publish_audit(AUTO_ACTOR, "AutoHalt", None, f"halted: {breach.describe()}", reason, now_ns)

    def reassert(self, key: str, now_ns: int) -> None:
        """Publish the halt state, a trading state or the limits in force again (signed, newer than what was
        written over it)."""
        reason = "state re-asserted after an invalid record under this key"
        if key == HALT_KEY:
            self.publish_halt_state(REASSERT_ACTOR, self.engine.halt_reason or reason, now_ns)
        elif scope_of_key(key) is not None:
            scope = scope_of_key(key) or ACCOUNT
            self.publish_control(key, state_event(self.engine.trading, scope, REASSERT_ACTOR, reason), now_ns)
        else:
            event = control_pb2.ControlEvent(actor=REASSERT_ACTOR, reason=reason, limits=self.engine.limits)
            self.limits_time_ns = self.publish_control(LIMITS_KEY, event, now_ns).time_ns


class _Outbox:
    """publish_audit takes a bus; this is the outbox as one."""

    def __init__(self, publish: Publish) -> None:
        self.publish = publish

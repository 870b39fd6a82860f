"""Execution's one wiring: what execution does with a risk decision, a control record, a market event and the
clock. The service (execution/service.py) runs it from its consumer loops; the backtester runs the same
object on its outbox, so the two cannot part.

No threads, locks, gRPC or Kafka and no wall clock: time comes in as now_ns (the engine keeps its injected
clock), observed reports leave through `publish` (Bus.publish's signature), metrics and logs through an
`AppObserver`. The caller serialises calls where its threads could race (the engine holds its own lock).
A refusal comes back as a Verdict / bounds.Problem: the service raises it as `Refused` (dead-lettered and
audited), the backtester counts it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from google.protobuf.message import Message

from quantumedge.execution.domain.orders import Order
from quantumedge.execution.engine import ExecutionEngine
from quantumedge.execution.observe import TouchBook, observed_report
from quantumedge.execution.settings import ExecutionSettings
from quantumedge.shared import bounds, signing, topics
from quantumedge.shared.admission import ControlGate, DecisionGate
from quantumedge.shared.signing import Keyring, Verdict
from quantumedge.v1 import control_pb2, execution_pb2, market_pb2, risk_pb2

Publish = Callable[[str, "str | None", Message], None]


class AppObserver(Protocol):
    """What execution reports about itself (the service records OpenTelemetry metrics and logs; default: nothing)."""

    def traded(self, decision: risk_pb2.RiskDecision, order: Order | None) -> None: ...

    def observed(self, report: execution_pb2.ExecutionReport) -> None: ...

    def state_changed(self, scope: str | None, state: str, event: control_pb2.ControlEvent) -> None: ...


class NoObserver:
    def traded(self, decision: risk_pb2.RiskDecision, order: Order | None) -> None:
        pass

    def observed(self, report: execution_pb2.ExecutionReport) -> None:
        pass

    def state_changed(self, scope: str | None, state: str, event: control_pb2.ControlEvent) -> None:
        pass


class ExecutionApp:
    def __init__(
        self,
        engine: ExecutionEngine,
        keyring: Keyring,
        settings: ExecutionSettings,
        max_decision_age_ns: int,
        max_clock_ahead_ns: int,
        publish: Publish,
        observer: AppObserver | None = None,
    ) -> None:
        self.engine = engine
        # Nothing is traded that risk did not sign, that is a replay or too old; control records the same.
        self.decision_gate = DecisionGate(keyring, max_decision_age_ns, max_clock_ahead_ns)
        self.control_gate = ControlGate(keyring)
        self.publish = publish
        self.observer: AppObserver = observer or NoObserver()
        self.observing = settings.mode == "observe"
        self.taker_fee_bps = settings.paper_taker_fee_bps
        # Observe-only: the touch per symbol for hypothetical fills; orders never reach the engine's venue.
        self.touch = TouchBook()
        self.observed_reports = 0
        self.market_guard = bounds.MarketGuard()
        self.heartbeat_ns = int(settings.heartbeat_interval_s * 1e9)
        self.last_beat_ns = 0  # 0: no heartbeat on the clock yet
        self.halt_in_force: control_pb2.HaltState | None = None

    # -- decisions ------------------------------------------------------------------------------------
    def on_decision(
        self, decision: risk_pb2.RiskDecision, key: str, position: tuple[int, int] | None, now_ns: int
    ) -> Verdict:
        """A risk.decisions.v1 record: traded (or observed) when it verifies and is sane; the verdict says why
        not otherwise (the venue never sees it then)."""
        verdict = self.decision_gate.check(decision, key, position, now_ns, self.engine.handled(decision))
        if not verdict.ok:
            if verdict.code == signing.STALE:
                # Signed by risk and never seen before, only too old (or too far ahead): say so on the reports
                # topic so risk releases the entry now. A bad signature or a replay is never answered.
                self.engine.refuse_decision(decision, verdict.code, verdict.detail)
            return verdict
        problem = bounds.check_decision(decision)
        if problem is not None:  # signed but absurd (NaN, 2^63-1 time stop): never the venue
            self.engine.refuse_decision(decision, problem.code, problem.detail)
            return Verdict(problem.code, problem.detail)
        if self.observing:
            self._observe(decision, now_ns)
        else:
            self.observer.traded(decision, self.engine.on_decision(decision))
        return verdict

    def _observe(self, decision: risk_pb2.RiskDecision, now_ns: int) -> None:
        """Observe-only: the decision's would-be order and its hypothetical fill, reported; nothing sent."""
        if not decision.approved:
            return
        touch = self.touch.get(decision.symbol or decision.intent.symbol)
        report = observed_report(decision, touch, self.taker_fee_bps, now_ns)
        self.observed_reports += 1
        self.publish(topics.REPORTS, report.order.symbol or None, report)
        self.observer.observed(report)

    # -- control records ------------------------------------------------------------------------------
    def on_control(self, event: control_pb2.ControlEvent, key: str, position: tuple[int, int] | None) -> Verdict:
        """A control.v1 record, applied when it verifies and is new (halt, trading state)."""
        verdict = self.control_gate.check(event, key, position)
        if not verdict.ok or verdict.repeat:
            return verdict
        kind = event.WhichOneof("payload")
        if kind == "halt":
            self.apply_halt(event)
        elif kind == "trading_state":
            self.apply_trading_state(event)
        return verdict

    def apply_trading_state(self, event: control_pb2.ControlEvent) -> None:
        state = event.trading_state
        before = self.engine.reducing(state.symbol)
        self.engine.on_trading_state(state)
        if before != self.engine.reducing(state.symbol):
            self.observer.state_changed(state.symbol or "account", risk_pb2.TradingState.Name(state.state), event)

    def apply_halt(self, event: control_pb2.ControlEvent) -> None:
        # Risk re-asserts an unchanged state after an invalid record: nothing to do again (no second flatten).
        if self.halt_in_force is not None and self.halt_in_force == event.halt:
            return
        self.halt_in_force = control_pb2.HaltState()
        self.halt_in_force.CopyFrom(event.halt)
        was = self.engine.status().halted
        self.engine.on_halt(event.halt, cause=event.event_id, reason=event.reason)
        if was != event.halt.halted:
            self.observer.state_changed(None, "HALTED" if event.halt.halted else "ACTIVE", event)

    # -- market and clock -----------------------------------------------------------------------------
    def on_market(self, event: market_pb2.MarketEvent) -> bounds.Problem | None:
        """Marks, paper fills, time stops; a problem (the event is never taken) when the market guard refuses it."""
        problem = self.market_guard.admit(event)  # the paper book and the marks never take a bad price
        if problem is not None:
            return problem
        if self.observing:
            self.touch.on_market(event)
        self.engine.on_market(event)
        return None

    def tick(self, now_ns: int) -> None:
        """The clock moved: a heartbeat once heartbeat_interval_s passed on it since the last."""
        if self.heartbeat_ns and now_ns - self.last_beat_ns >= self.heartbeat_ns:
            self.beat(now_ns)

    def beat(self, now_ns: int, note: str = "heartbeat") -> None:
        """A heartbeat now (execution's position report per symbol: risk fails closed without it)."""
        self.last_beat_ns = now_ns
        self.engine.heartbeat(note)

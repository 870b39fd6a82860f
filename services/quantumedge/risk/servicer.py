"""quantumedge.v1.RiskService over gRPC: status, limits, halt/resume, explain, manual review, equity, decisions.

Each call takes the service's lock around the engine; every change is durable on control.v1 (or audited as
refused) before the call answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

from quantumedge.risk.domain.engine import InvalidIntentError, RiskEngine, StillBreachedError
from quantumedge.risk.domain.limit_config import LIMIT_FIELDS, InvalidLimitsError, merge_limits
from quantumedge.risk.domain.reasons import matches, primary_code
from quantumedge.risk.metrics import decisions, halts
from quantumedge.risk.state_rpcs import TradingStateRpcs, actor_of
from quantumedge.shared import bounds, topics
from quantumedge.shared.admission import LIMITS_KEY
from quantumedge.shared.grpc_server import refuse_invalid
from quantumedge.shared.logs import get_logger
from quantumedge.v1 import control_pb2, risk_pb2, risk_pb2_grpc

if TYPE_CHECKING:
    from quantumedge.risk.service import RiskService

log = get_logger("quantumedge.risk.service")  # the service's logger name, as before the split


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
        halts.add(1, {"cause": "operator"})
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
        decisions.add(
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

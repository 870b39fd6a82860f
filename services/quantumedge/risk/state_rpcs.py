"""RiskService Reduce / Activate: the operator's exits-only switch per symbol or for the whole account.

Both need the operator's token (shared/auth PROTECTED_METHODS), are audited on audit.v1 whatever their
outcome, and answer with the scope's state once its signed record is acknowledged by the broker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

from quantumedge.risk.domain.trading_state import OPERATOR, valid_scope
from quantumedge.shared.auth import current_actor
from quantumedge.shared.logs import get_logger
from quantumedge.v1 import common_pb2, risk_pb2

if TYPE_CHECKING:
    from quantumedge.risk.service import RiskService

log = get_logger(__name__)
MAX_REASON_LEN = 512


def actor_of(context: grpc.ServicerContext) -> common_pb2.Actor:
    """Who made a changing call: the subject the operator-auth interceptor authenticated, else "anonymous".

    A client-sent `x-qe-actor` header is never trusted here: only the interceptor's current_actor() is.
    """
    return common_pb2.Actor(subject=current_actor() or "anonymous", source=context.peer() or "")


class TradingStateRpcs:
    svc: RiskService

    def _checked(self, method: str, request: Any, context: grpc.ServicerContext) -> common_pb2.Actor:
        """The caller, after the bounds of symbol and reason; INVALID_ARGUMENT (audited) outside them."""
        actor = actor_of(context)
        error = valid_scope(request.symbol)
        if not error and len(request.reason) > MAX_REASON_LEN:
            error = f"reason must be at most {MAX_REASON_LEN} characters"
        if error:
            self.svc.publish_audit(actor, method, request, f"invalid: {error}", request.reason[:MAX_REASON_LEN])
            self.svc.bus.flush()
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, error)
        return actor

    def Reduce(self, request: risk_pb2.ReduceRequest, context: grpc.ServicerContext) -> Any:
        actor = self._checked("Reduce", request, context)
        reason = request.reason or "operator reduce"
        with self.svc.lock:
            trading = self.svc.engine.trading
            trading.reduce(request.symbol, OPERATOR, f"{actor.subject}: {reason}", self.svc.clock())
            self.svc.publish_states(actor, reason)
            state = trading.scope(request.symbol).to_pb(request.symbol)
            self.svc.publish_audit(actor, "Reduce", request, "reducing", reason)
        # Durable before the operator reads "REDUCING": the broker has the signed record.
        self.svc.bus.flush()
        log.warning("exits only by operator", extra={"actor": actor.subject, "scope": request.symbol or "account"})
        return risk_pb2.ReduceResponse(state=state)

    def Activate(self, request: risk_pb2.ActivateRequest, context: grpc.ServicerContext) -> Any:
        actor = self._checked("Activate", request, context)
        reason = request.reason or "operator activate"
        with self.svc.lock:
            trading = self.svc.engine.trading
            lifted = trading.activate(request.symbol, self.svc.clock())
            self.svc.publish_states(actor, reason)
            state = trading.scope(request.symbol).to_pb(request.symbol)
            outcome = f"active (lifted {', '.join(lifted)})" if lifted else "active (nothing to lift)"
            self.svc.publish_audit(actor, "Activate", request, outcome, reason)
        self.svc.bus.flush()
        log.warning("trading activated by operator", extra={"actor": actor.subject, "lifted": lifted})
        return risk_pb2.ActivateResponse(state=state)

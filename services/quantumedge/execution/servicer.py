"""The ExecutionService gRPC API: status, orders, positions, cancel-all, flatten and manual orders (which risk
reviews before anything is placed)."""

from __future__ import annotations

import math
import threading
import uuid
from typing import TYPE_CHECKING, Any

import grpc

from quantumedge.execution.convert import order_to_pb, position_to_pb
from quantumedge.execution.domain import ids
from quantumedge.shared import bounds
from quantumedge.shared.auth import channel_credentials_from_settings, forward_metadata
from quantumedge.shared.grpc_server import refuse_invalid
from quantumedge.v1 import common_pb2, execution_pb2, execution_pb2_grpc, risk_pb2, risk_pb2_grpc

if TYPE_CHECKING:
    from quantumedge.execution.service import ExecutionService


class ExecutionServicer(execution_pb2_grpc.ExecutionServiceServicer):
    def __init__(self, service: ExecutionService) -> None:
        self.service = service
        self.engine = service.engine
        self._submit_lock = threading.Lock()
        self._decisions: dict[str, risk_pb2.RiskDecision] = {}
        self._channel: grpc.Channel | None = None

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()

    def GetStatus(self, request: Any, context: grpc.ServicerContext) -> execution_pb2.ExecutionServiceGetStatusResponse:
        return self.engine.status()

    def ListOrders(self, request: execution_pb2.ListOrdersRequest, context: grpc.ServicerContext) -> Any:
        orders = self.engine.list_orders(request.symbol, request.open_only)
        return execution_pb2.ListOrdersResponse(orders=[order_to_pb(o) for o in orders])

    def ListPositions(self, request: Any, context: grpc.ServicerContext) -> Any:
        return execution_pb2.ListPositionsResponse(positions=[position_to_pb(p) for p in self.engine.list_positions()])

    def CancelAll(self, request: execution_pb2.CancelAllRequest, context: grpc.ServicerContext) -> Any:
        refuse_invalid(request, context)
        canceled = self.engine.cancel_all(request.symbol, request.reason or "operator")
        self.service.bus.flush()
        return execution_pb2.CancelAllResponse(canceled=canceled)

    def Flatten(self, request: execution_pb2.FlattenRequest, context: grpc.ServicerContext) -> Any:
        refuse_invalid(request, context)
        sent = self.engine.flatten(request.symbol, request.reason or "operator", cause=f"grpc-{uuid.uuid4().hex}")
        self.service.bus.flush()
        return execution_pb2.FlattenResponse(orders_sent=sent)

    def SubmitOrder(self, request: execution_pb2.SubmitOrderRequest, context: grpc.ServicerContext) -> Any:
        """A manual order: risk reviews it (ReviewOrder) and only an approved decision is placed.

        Risk also publishes that decision on risk.decisions.v1, which this service consumes: both paths
        derive the client order id from the same intent id, so whichever comes first places the order and
        the other finds it. The same request_id returns the same order.
        """
        refuse_invalid(request, context)
        problem = validate_submit(request)
        if problem:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        if self.service.observing:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "execution is observe-only (execution.mode=observe): no order is sent to any venue",
            )
        intent_id = f"manual-{request.request_id or uuid.uuid4().hex}"
        with self._submit_lock:
            existing = self._existing(intent_id)
            if existing is not None:
                decision = self._decisions.get(intent_id) or risk_pb2.RiskDecision(
                    approved=True, symbol=existing.symbol, reasons=["request already handled: same order returned"]
                )
                return execution_pb2.SubmitOrderResponse(decision=decision, order=order_to_pb(existing))
            decision = self._review(self._intent(request, intent_id), context)
            self._decisions[intent_id] = decision
            response = execution_pb2.SubmitOrderResponse(decision=decision)
            if not decision.approved:
                return response
            order = self.engine.on_decision(decision) or self._existing(intent_id)
            self.service.bus.flush()
            if order is not None:
                response.order.CopyFrom(order_to_pb(order))
            return response

    def _existing(self, intent_id: str) -> Any:
        for kind in (ids.ENTRY, ids.EXIT):
            order = self.engine.orders.get(ids.order_id(kind, intent_id))
            if order is not None:
                return order
        return None

    def _intent(self, request: execution_pb2.SubmitOrderRequest, intent_id: str) -> risk_pb2.OrderIntent:
        mark = self.engine.marks.get(request.symbol)
        # Kind left unspecified: risk decides entry or exit from its own ledger.
        return risk_pb2.OrderIntent(
            intent_id=intent_id,
            symbol=request.symbol,
            side=request.side,
            order_type=request.order_type,
            time_in_force=request.time_in_force,
            quantity=request.quantity,
            limit_price=request.limit_price,
            take_profit_price=request.take_profit_price,
            stop_loss_price=request.stop_loss_price,
            created_time_ns=self.service.clock(),
            reference_price=float(mark) if mark else request.limit_price,
        )

    def _review(self, intent: risk_pb2.OrderIntent, context: grpc.ServicerContext) -> risk_pb2.RiskDecision:
        """Risk decides on manual orders too; no answer, or one that fails verification, means no order."""
        address = self.service.cfg.risk_address or f"127.0.0.1:{self.service.settings.ports.risk}"
        if self._channel is None:
            self._channel = self._open_channel(address)
        try:
            answer = risk_pb2_grpc.RiskServiceStub(self._channel).ReviewOrder(
                risk_pb2.ReviewOrderRequest(intent=intent),
                timeout=self.service.cfg.risk_timeout_s,
                metadata=forward_metadata(),  # the caller's token: risk authenticates the operator again
            )
        except grpc.RpcError as exc:
            code = exc.code()
            if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT):
                context.abort(code, f"risk refused the review: {exc.details()}")
            context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"risk service at {address} did not review the order ({code.name}): refused, fail closed",
            )
        decision = answer.decision
        verdict = self.service.decision_gate.check(decision, decision.symbol, None, self.service.clock())
        if not verdict.ok:
            self.service.refuse_answer("/quantumedge.v1.ExecutionService/SubmitOrder", verdict)
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"risk's answer failed verification ({verdict.code}): refused, fail closed",
            )
        return decision

    def _open_channel(self, address: str) -> grpc.Channel:
        """Plaintext, or with mutual TLS on: execution presents its own certificate (its service identity)."""
        settings = self.service.settings
        credentials = channel_credentials_from_settings(settings.vault)
        if credentials is None:
            return grpc.insecure_channel(address)
        name = settings.grpc.tls_server_name
        options = [("grpc.ssl_target_name_override", name)] if name else []
        return grpc.secure_channel(address, credentials, options=options)


def validate_submit(request: execution_pb2.SubmitOrderRequest) -> str:
    """The first problem with a SubmitOrder request, naming the field; "" when it is valid."""
    if not request.symbol or not request.symbol.isalnum() or not request.symbol.isupper():
        return "symbol is required (upper-case letters and digits, e.g. BTCUSDT)"
    if request.side not in (common_pb2.SIDE_BUY, common_pb2.SIDE_SELL):
        return "side must be SIDE_BUY or SIDE_SELL"
    if request.order_type not in (risk_pb2.ORDER_TYPE_MARKET, risk_pb2.ORDER_TYPE_LIMIT):
        return "order_type must be ORDER_TYPE_MARKET or ORDER_TYPE_LIMIT"
    if not math.isfinite(request.quantity) or request.quantity <= 0 or request.quantity > bounds.MAX_QUANTITY:
        return "quantity must be a positive number"
    for name in ("limit_price", "take_profit_price", "stop_loss_price"):
        value = getattr(request, name)
        if not math.isfinite(value) or value < 0 or value > bounds.MAX_PRICE:
            return f"{name} must be zero (unset) or a positive number"
    if request.order_type == risk_pb2.ORDER_TYPE_LIMIT and request.limit_price <= 0:
        return "limit_price is required for ORDER_TYPE_LIMIT"
    if request.order_type == risk_pb2.ORDER_TYPE_MARKET:
        if request.limit_price:
            return "limit_price must be unset for ORDER_TYPE_MARKET"
        if request.time_in_force != risk_pb2.TIME_IN_FORCE_UNSPECIFIED:
            return "time_in_force applies to ORDER_TYPE_LIMIT only"
    tp, sl = request.take_profit_price, request.stop_loss_price
    if tp and sl and (tp <= sl if request.side == common_pb2.SIDE_BUY else tp >= sl):
        return "take_profit_price and stop_loss_price are on the wrong sides for this side"
    if len(request.request_id) > 128:
        return "request_id must be at most 128 characters"
    return ""

"""One client for the four services' gRPC APIs, used by the CLI and the console (which keep no state).

Changing calls carry the operator's token as `authorization: Bearer` metadata; the services check it and
audit the call under the token's subject. Errors become OperatorError lines naming what to do.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from quantumedge.shared.config import SERVICE_NAMES, port_setting
from quantumedge.shared.errors import OperatorError
from quantumedge.v1 import (
    execution_pb2,
    execution_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    ingest_pb2,
    ingest_pb2_grpc,
    risk_pb2,
    risk_pb2_grpc,
)

if TYPE_CHECKING:
    from quantumedge.settings import Settings  # annotations only: the caller hands the root in

T = TypeVar("T")
TOKEN_ENV = "QE_OPERATOR_TOKEN"  # noqa: S105 - the name of the variable, not a token
HEALTH = {
    health_pb2.HealthCheckResponse.SERVING: "SERVING",
    health_pb2.HealthCheckResponse.NOT_SERVING: "NOT_SERVING",
}


def operator_token() -> str:
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise OperatorError(
            f"changing calls need the operator token: set {TOKEN_ENV}", setting=TOKEN_ENV, reason="no_operator_token"
        )
    return token


def target_host(settings: Settings) -> str:
    """Where the services answer: QE_OPS_HOST, else loopback when they listen everywhere."""
    host = os.environ.get("QE_OPS_HOST") or settings.grpc_host
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - a listen-all address


@dataclass
class Services:
    """Stubs for the four services, on one channel each; use as a context manager."""

    settings: Settings
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        host = target_host(self.settings)
        given = self.settings.console.addresses
        self.addresses = {name: given.get(name) or f"{host}:{self.settings.ports.of(name)}" for name in SERVICE_NAMES}
        self.channels = {name: grpc.insecure_channel(addr) for name, addr in self.addresses.items()}
        self.ingest = ingest_pb2_grpc.IngestServiceStub(self.channels["ingest"])
        self.inference = inference_pb2_grpc.InferenceServiceStub(self.channels["inference"])
        self.risk = risk_pb2_grpc.RiskServiceStub(self.channels["risk"])
        self.execution = execution_pb2_grpc.ExecutionServiceStub(self.channels["execution"])

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        for channel in self.channels.values():
            channel.close()

    def health(self, name: str) -> str:
        try:
            answer = health_pb2_grpc.HealthStub(self.channels[name]).Check(
                health_pb2.HealthCheckRequest(), timeout=min(self.timeout_s, 3.0)
            )
        except grpc.RpcError as exc:
            return "UNREACHABLE" if exc.code() == grpc.StatusCode.UNAVAILABLE else exc.code().name
        return HEALTH.get(answer.status, "UNKNOWN")

    def call(self, service: str, method: Callable[..., T], request: Any, token: str | None = None) -> T:
        """One RPC; a refusal or an absent service becomes an OperatorError naming what to do."""
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        try:
            return method(request, metadata=metadata, timeout=self.timeout_s)
        except grpc.RpcError as exc:
            raise rpc_error(service, self.addresses[service], exc) from None

    # -- the calls the CLI and the console make --------------------------------------------------------
    def risk_status(self) -> risk_pb2.RiskServiceGetStatusResponse:
        return self.call("risk", self.risk.GetStatus, risk_pb2.RiskServiceGetStatusRequest())

    def execution_status(self) -> execution_pb2.ExecutionServiceGetStatusResponse:
        return self.call("execution", self.execution.GetStatus, execution_pb2.ExecutionServiceGetStatusRequest())

    def inference_status(self) -> inference_pb2.InferenceServiceGetStatusResponse:
        return self.call("inference", self.inference.GetStatus, inference_pb2.InferenceServiceGetStatusRequest())

    def ingest_status(self) -> ingest_pb2.IngestServiceGetStatusResponse:
        return self.call("ingest", self.ingest.GetStatus, ingest_pb2.IngestServiceGetStatusRequest())

    def positions(self) -> list[execution_pb2.Position]:
        answer = self.call("execution", self.execution.ListPositions, execution_pb2.ListPositionsRequest())
        return list(answer.positions)

    def orders(self, symbol: str = "", open_only: bool = False) -> list[execution_pb2.Order]:
        request = execution_pb2.ListOrdersRequest(symbol=symbol, open_only=open_only)
        return list(self.call("execution", self.execution.ListOrders, request).orders)

    def decisions(
        self, symbol: str = "", outcome: str = "", reason: str = "", limit: int = 50
    ) -> list[risk_pb2.RiskDecision]:
        request = risk_pb2.ListDecisionsRequest(symbol=symbol, outcome=outcome, reason=reason, limit=limit)
        return list(self.call("risk", self.risk.ListDecisions, request).decisions)

    def explain(self, decision_id: str) -> risk_pb2.RiskDecision:
        request = risk_pb2.ExplainDecisionRequest(decision_id=decision_id)
        return self.call("risk", self.risk.ExplainDecision, request).decision

    def limits(self) -> risk_pb2.RiskLimits:
        return self.call("risk", self.risk.GetLimits, risk_pb2.GetLimitsRequest()).limits

    def models(self) -> list[inference_pb2.ModelInfo]:
        return list(self.call("inference", self.inference.ListModels, inference_pb2.ListModelsRequest()).models)


def rpc_error(service: str, address: str, exc: grpc.RpcError) -> OperatorError:
    code = exc.code()
    detail = (exc.details() or "").splitlines()[0] if exc.details() else code.name
    if code == grpc.StatusCode.UNAVAILABLE:
        return OperatorError(
            f"{service} does not answer at {address}; start it (`quantumedge up` or `serve {service}`) or set "
            f"{port_setting(service)} / QE_OPS_HOST",
            setting=port_setting(service),
            reason="service_unavailable",
        )
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return OperatorError(f"{detail}; check {TOKEN_ENV}", setting=TOKEN_ENV, reason="unauthenticated")
    if code == grpc.StatusCode.UNIMPLEMENTED:
        # An older service without the call (e.g. Reduce before trading states): say so, not a bare code.
        return OperatorError(f"{service} at {address} has no such call yet; upgrade it", reason="not_available")
    return OperatorError(f"{service}: {detail}", reason=code.name.lower())

"""Ask a gRPC server's standard health service (grpc.health.v1.Health/Check) once.

Used by `quantumedge health` (the chart's `helm test` hook, and the image tests' probes): the image carries
no grpcurl or grpc_health_probe, and this is the same client stub those tools use.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


@dataclass(frozen=True)
class HealthAnswer:
    address: str
    service: str
    status: str  # SERVING, NOT_SERVING, SERVICE_UNKNOWN, ... or UNAVAILABLE / DEADLINE_EXCEEDED when no answer

    @property
    def serving(self) -> bool:
        return self.status == "SERVING"


def check(address: str, service: str = "", *, timeout_s: float = 5.0) -> HealthAnswer:
    """One Check call over a plaintext channel; never raises for an unreachable or failing server."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s, wait_for_ready=True)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
            status = "SERVICE_UNKNOWN" if code == grpc.StatusCode.NOT_FOUND else code.name
            return HealthAnswer(address, service, status)
    return HealthAnswer(address, service, health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

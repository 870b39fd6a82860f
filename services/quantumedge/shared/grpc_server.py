"""gRPC server scaffolding shared by the four services.

Every server serves grpc.health.v1.Health (the library's HealthServicer) and server reflection
for all of its services, so `grpcurl -plaintext HOST:PORT list` needs no proto files. Stopping
drains: health first reports NOT_SERVING to everyone (enter_graceful_shutdown), then in-flight
calls get `grace` seconds to finish.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from quantumedge.shared.logs import get_logger

log = get_logger(__name__)

# (add_XServicer_to_server, servicer, full service name)
ServiceBinding = tuple[Callable[[object, grpc.Server], None], object, str]


class GrpcServer:
    def __init__(
        self,
        port: int,
        services: Sequence[ServiceBinding],
        interceptors: Sequence[grpc.ServerInterceptor] = (),
        host: str = "0.0.0.0",  # noqa: S104 - in a pod the service must answer on its interfaces
        max_workers: int = 16,
        credentials: grpc.ServerCredentials | None = None,
    ) -> None:
        from opentelemetry.instrumentation.grpc import server_interceptor

        self.services = list(services)
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
            interceptors=[server_interceptor(), *interceptors],
            options=[("grpc.so_reuseport", 0)],
        )
        self.health = health.HealthServicer(experimental_non_blocking=True)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names = [name for _, _, name in self.services]
        for add, servicer, _ in self.services:
            add(servicer, self.server)
        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server)
        address = f"{host}:{port}"
        bound = (
            self.server.add_secure_port(address, credentials)
            if credentials is not None
            else self.server.add_insecure_port(address)
        )
        if bound == 0:
            raise RuntimeError(f"cannot bind gRPC port {address} (in use?)")
        self.port = bound
        for name in ["", *names]:
            self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

    def start(self) -> None:
        self.server.start()
        log.info("grpc server listening", extra={"port": self.port, "services": [n for _, _, n in self.services]})

    def set_serving(self, serving: bool = True) -> None:
        """Readiness: SERVING only once the service's loops run (and again NOT_SERVING when one dies)."""
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ["", *[n for _, _, n in self.services]]:
            self.health.set(name, status)

    def stop(self, grace_s: float = 5.0) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait(grace_s + 1)

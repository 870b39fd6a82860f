"""gRPC server scaffolding shared by the four services.

Every server serves grpc.health.v1.Health (the library's HealthServicer) and server reflection
for all of its services, so `grpcurl -plaintext HOST:PORT list` needs no proto files. Stopping
drains: health first reports NOT_SERVING to everyone (enter_graceful_shutdown), then in-flight
calls get `grace` seconds to finish.

Limits (CallLimits): every call but health Check counts against `max_concurrent_rpcs`, and the QuantumEdge
APIs' streaming calls (Subscribe) against `max_streams` as well; a call over a limit is answered
RESOURCE_EXHAUSTED at once. Both stay below the thread count, so idle streams can never take the last thread
and a health check always answers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from quantumedge.shared import bounds
from quantumedge.shared.logs import get_logger

log = get_logger(__name__)

# (add_XServicer_to_server, servicer, full service name)
ServiceBinding = tuple[Callable[[object, grpc.Server], None], object, str]
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
LIMITED_STREAMS_PREFIX = "/quantumedge.v1."


class _Slots:
    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.used >= self.size:
                return False
            self.used += 1
            return True

    def give(self) -> None:
        with self._lock:
            self.used -= 1


class CallLimits(grpc.ServerInterceptor):
    """Caps concurrent calls and concurrent QuantumEdge streams; health Check is never capped."""

    def __init__(self, max_concurrent_rpcs: int, max_streams: int) -> None:
        self.calls = _Slots(max_concurrent_rpcs)
        self.streams = _Slots(max_streams)
        self.refused = 0

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None or details.method == HEALTH_CHECK:
            return handler
        streaming = bool(handler.request_streaming or handler.response_streaming)
        pools = [self.calls]
        if streaming and details.method.startswith(LIMITED_STREAMS_PREFIX):
            pools.append(self.streams)
        return _limited(handler, details.method, pools, self)


def _acquire(pools: list[_Slots], method: str, limits: CallLimits, context: grpc.ServicerContext) -> Callable[[], None]:
    """Take a slot in every pool or abort RESOURCE_EXHAUSTED; returns the (idempotent) release."""
    taken: list[_Slots] = []
    for pool in pools:
        if not pool.take():
            for held in taken:
                held.give()
            limits.refused += 1
            which = "streams" if pool is limits.streams else "calls"
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{method}: server busy ({pool.size} concurrent {which})")
        taken.append(pool)
    done = threading.Event()

    def release() -> None:
        if not done.is_set():
            done.set()
            for held in taken:
                held.give()

    return release


def _limited(handler: Any, method: str, pools: list[_Slots], limits: CallLimits) -> Any:
    def unary(behavior: Callable[..., Any]) -> Callable[..., Any]:
        def run(request: Any, context: grpc.ServicerContext) -> Any:
            release = _acquire(pools, method, limits, context)
            try:
                return behavior(request, context)
            finally:
                release()

        return run

    def streaming(behavior: Callable[..., Any]) -> Callable[..., Any]:
        def run(request: Any, context: grpc.ServicerContext) -> Any:
            release = _acquire(pools, method, limits, context)
            context.add_callback(release)  # a cancelled stream gives its slot back even if never resumed
            try:
                yield from behavior(request, context)
            finally:
                release()

        return run

    return rewrap(handler, unary, streaming)


Wrap = Callable[[Callable[..., Any]], Callable[..., Any]]


def rewrap(handler: Any, unary: Wrap, streaming: Wrap) -> Any:
    """The same method handler with its behaviour wrapped: `unary` for unary responses, `streaming` (a
    generator) for streamed responses. Interceptors use it to run code around every kind of call."""
    kinds = {
        (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler, unary),
        (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler, streaming),
        (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler, unary),
        (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler, streaming),
    }
    attr, factory, wrap = kinds[(bool(handler.request_streaming), bool(handler.response_streaming))]
    return factory(
        wrap(getattr(handler, attr)),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class GrpcServer:
    def __init__(
        self,
        port: int,
        services: Sequence[ServiceBinding],
        interceptors: Sequence[grpc.ServerInterceptor] = (),
        host: str = "0.0.0.0",  # noqa: S104 - in a pod the service must answer on its interfaces
        max_workers: int = 16,
        credentials: grpc.ServerCredentials | None = None,
        max_concurrent_rpcs: int | None = None,
        max_streams: int | None = None,
    ) -> None:
        from opentelemetry.instrumentation.grpc import server_interceptor

        self.services = list(services)
        # Defaults keep two threads free for health checks and half the rest for streams.
        calls = max_concurrent_rpcs or max(1, max_workers - 4)
        self.limits = CallLimits(calls, max_streams or max(1, calls // 2))
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
            interceptors=[server_interceptor(), self.limits, *interceptors],
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


def refuse_invalid(request: Any, context: grpc.ServicerContext, extra: bounds.Problem | None = None) -> None:
    """INVALID_ARGUMENT, with the reason code and the field, for a request failing the bounds checks
    (strings too long, numbers not finite or absurd: shared/bounds) or the caller's own `extra` check."""
    problem = bounds.check_request(request) or extra
    if problem is not None:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{problem.code}: {problem.detail}")

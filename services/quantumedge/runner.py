"""Runs one or more services: bus, telemetry, gRPC servers, signals, graceful drain."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from quantumedge import services_registry
from quantumedge.settings import Settings
from quantumedge.shared import topics
from quantumedge.shared.auth import build_interceptors, server_credentials_from_settings
from quantumedge.shared.bus import Bus, BusUnavailable, make_bus
from quantumedge.shared.bus.reachable import require_broker
from quantumedge.shared.config import port_setting
from quantumedge.shared.errors import PortInUseError
from quantumedge.shared.grpc_server import GrpcServer
from quantumedge.shared.logs import get_logger
from quantumedge.shared.market_clock import MarketClock
from quantumedge.shared.metrics_http import MetricsServer, start_metrics_server
from quantumedge.shared.service import ServiceBase
from quantumedge.shared.telemetry import init_telemetry, prometheus_registry, shutdown_telemetry

log = get_logger(__name__)

# Start downstream first so nothing an upstream service publishes goes unheard; stop upstream first.
START_ORDER = ("execution", "risk", "inference", "ingest")


@dataclass
class Running:
    settings: Settings
    bus: Bus
    services: dict[str, ServiceBase] = field(default_factory=dict)
    servers: dict[str, GrpcServer] = field(default_factory=dict)
    metrics: dict[str, MetricsServer] = field(default_factory=dict)
    stop_event: threading.Event = field(default_factory=threading.Event)
    # Notifications (notify.enabled): the consumer of control/reports in `up`, failures in every process.
    notify: Any = None
    notifier: Any = None

    def stop(self, grace_s: float = 5.0) -> None:
        if self.notify is not None:
            self.notify.stop()
        elif self.notifier is not None:
            self.notifier.stop()
        for server in self.metrics.values():
            server.stop()
        for name in reversed([n for n in START_ORDER if n in self.servers]):
            self.servers[name].stop(grace_s)
        for name in reversed([n for n in START_ORDER if n in self.services]):
            try:
                self.services[name].stop()
            except Exception:
                log.exception("service stop failed", extra={"service": name})
        try:
            self.bus.flush()
        finally:
            self.bus.close()
            shutdown_telemetry()


def interceptors_for(settings: Settings, bus: Bus, service: str) -> list:
    """Server interceptors: operator authentication on changing calls (see quantumedge.shared.auth)."""
    return build_interceptors(settings, bus, service)


def start(
    names: Sequence[str],
    settings: Settings,
    bus: Bus | None = None,
    clock: MarketClock | None = None,
    wire: Callable[[str, ServiceBase], None] | None = None,
    stop_event: threading.Event | None = None,
) -> Running:
    """Create the bus (and Kafka topics), then start each service and its gRPC server.

    On Kafka the process authenticates as its one service (its own principal and ACLs). `clock`: one market
    clock for every service (the embedded lockstep run, embedded.py); None keeps each on the wall clock.
    `wire(name, service)`: called once a service is made and before it starts (embedded.py registers ticks).
    `stop_event`: the one the caller's signal handlers already set, so a stop asked for while the services start
    (the platform's SIGTERM, a Ctrl-C) is a graceful stop once they are up, never a KeyboardInterrupt mid-start."""
    init_telemetry(names[0] if len(names) == 1 else "quantumedge", settings.telemetry)
    if bus is None and settings.bus == "kafka":
        require_broker(settings.kafka.bootstrap)
    bus = bus or make_bus(settings, identity=names[0] if len(names) == 1 else None)
    bus.ensure_topics(sorted({topic for name in names for topic in topics.topics_used_by(name)}))
    running = Running(settings, bus) if stop_event is None else Running(settings, bus, stop_event=stop_event)
    try:
        for name in [n for n in START_ORDER if n in names]:
            service = services_registry.create(name, settings, bus, clock)
            running.services[name] = service
            if wire is not None:
                wire(name, service)
            server = _grpc_server(name, service, settings, bus)
            running.servers[name] = server
            metrics = _metrics_server(name, settings, several=len(names) > 1)
            if metrics is not None:
                running.metrics[name] = metrics
            server.start()
            service.start()
            server.set_serving(True)
            log.info("service started", extra={"service": name, "port": server.port})
        _start_notifications(running, several=len(names) > 1)
    except BaseException:
        running.stop(grace_s=0)
        raise
    return running


def _start_notifications(running: Running, several: bool) -> None:
    from quantumedge.notify.service import NotifyService, notifier_for

    notifier = notifier_for(running.settings)
    if notifier is None:
        return
    running.notifier = notifier
    if several:  # one process runs the whole system (`up`): it also tells of halts, fills and rejections
        running.notify = NotifyService(running.settings, running.bus, notifier)
        running.notify.start()
    else:
        notifier.start()


def _grpc_server(name: str, service: ServiceBase, settings: Settings, bus: Bus) -> GrpcServer:
    port = settings.ports.of(name)
    try:
        return GrpcServer(
            port,
            service.grpc_services(),
            interceptors=interceptors_for(settings, bus, name),
            host=settings.grpc_host,
            credentials=server_credentials_from_settings(settings.vault),
            max_workers=settings.grpc.max_workers,
            max_concurrent_rpcs=settings.grpc.max_concurrent_rpcs,
            max_streams=settings.grpc.max_streams,
        )
    except RuntimeError as exc:
        if "bind" not in str(exc).lower():
            raise
        raise PortInUseError(
            f"{settings.grpc_host}:{port} ({name} gRPC) is already in use; stop what holds it or set "
            f"{port_setting(name)} to a free port",
            setting=port_setting(name),
        ) from None


def _metrics_server(name: str, settings: Settings, several: bool) -> MetricsServer | None:
    registry = prometheus_registry()
    port = settings.ports.metrics_of(name)
    if registry is None or port == 0:
        return None
    return start_metrics_server(name, port, settings.grpc_host, registry, only_this_service=several)


def serve_forever(running: Running, until: Callable[[], bool] | None = None, check_every_s: float = 0.5) -> None:
    """Block until a signal, `until()` turns true, or a service dies (then readiness goes NOT_SERVING).

    A broker outage is not a death: readiness is NOT_SERVING while the bus is down and SERVING again once it
    answers, and the process stays up."""
    serving = True
    while not running.stop_event.wait(check_every_s):
        for name, service in running.services.items():
            if not service.healthy():
                log.error("service unhealthy, stopping", extra={"service": name})
                if running.notifier is not None:
                    from quantumedge.notify.events import Notification

                    running.notifier.notify(Notification("service_failure", f"QuantumEdge {name} failed and stops"))
                running.servers[name].set_serving(False)
                running.stop_event.set()
        if running.stop_event.is_set():
            break
        up = probe_bus(running.bus)
        if up != serving:
            serving = up
            for server in running.servers.values():
                server.set_serving(up)
        if until is not None and until():
            break


def probe_bus(bus: Bus, timeout_s: float = 3.0) -> bool:
    """Ask the broker whether it answers (feeding bus.outage); True when the whole process sees the bus up."""
    try:
        bus.probe(timeout_s)
    except BusUnavailable as exc:
        bus.outage.failed("probe", exc)
    else:
        bus.outage.ok("probe")
    return not bus.outage.down

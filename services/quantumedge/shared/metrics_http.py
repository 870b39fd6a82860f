"""Each service's Prometheus endpoint: the OpenTelemetry meters, exported by the Prometheus reader, over HTTP.

One process may run several services (`quantumedge up`): each service's port then shows only its own
families and samples (its meter scope `quantumedge.<service>`, or a sample labelled with its group or
service), so one scrape per service means the same thing in one process or four.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_wsgi_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from quantumedge.shared.config import port_setting
from quantumedge.shared.errors import PortInUseError
from quantumedge.shared.logs import get_logger

log = get_logger(__name__)

OWNER_LABELS = ("group", "service")


class ServiceView(Collector):
    """The families of `base` that belong to `service` (by meter scope, or by a group/service label)."""

    def __init__(self, base: CollectorRegistry, service: str) -> None:
        self.base = base
        self.service = service
        self.scope = f"quantumedge.{service}"

    def _mine(self, labels: dict[str, str]) -> bool:
        if labels.get("otel_scope_name") == self.scope:
            return True
        return any(labels.get(key) == self.service for key in OWNER_LABELS)

    def collect(self) -> Iterator[Metric]:
        for family in self.base.collect():
            samples = [s for s in family.samples if self._mine(s.labels)]
            if samples:
                family.samples = samples
                yield family


class MetricsServer:
    def __init__(self, service: str, httpd: WSGIServer, thread: threading.Thread) -> None:
        self.service = service
        self._httpd = httpd
        self._thread = thread
        self.port = int(httpd.server_port)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


def start_metrics_server(
    service: str, port: int, host: str, base: CollectorRegistry, only_this_service: bool
) -> MetricsServer:
    """Serve /metrics for `service` on host:port; a taken port stops start-up naming the setting that moves it."""
    registry = base
    if only_this_service:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ServiceView(base, service))
    try:
        httpd, thread = start_wsgi_server(port, addr=host, registry=registry)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"{host}:{port} ({service} metrics) is already in use; stop what holds it or set "
                f"{port_setting(service, 'metrics')} to a free port (0 turns the endpoint off)",
                setting=port_setting(service, "metrics"),
            ) from None
        raise
    server = MetricsServer(service, httpd, thread)
    log.info("metrics endpoint listening", extra={"service": service, "port": server.port})
    return server

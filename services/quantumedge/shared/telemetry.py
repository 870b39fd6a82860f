"""OpenTelemetry set-up for traces and metrics, and W3C trace context in Kafka headers.

Every span exporter is wrapped in MaskingSpanExporter: span names, attributes, events (recorded exceptions'
message and stacktrace included), links and status descriptions are masked with the log registry's
`mask_value` before the exporter serialises anything, so a secret in an exception never leaves in a span.

The contrib kafka-python instrumentation wraps only `send` and `__next__`, not `poll()`, so the
bus injects and extracts the context itself (inject_headers / extract_context) and one trace
runs from a tick to the order it caused.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    InMemoryMetricReader,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Link, Status
from prometheus_client import CollectorRegistry

from quantumedge.shared.config import TelemetrySettings
from quantumedge.shared.logs import mask, mask_value

_lock = threading.Lock()
_initialised = False
_memory_spans: InMemorySpanExporter | None = None
_memory_metrics: InMemoryMetricReader | None = None
_tracer_provider: TracerProvider | None = None
_meter_provider: MeterProvider | None = None
_prometheus_registry: CollectorRegistry | None = None


def _masked_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {mask(key): mask_value(value) for key, value in (attributes or {}).items()}


def masked_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of a finished span with every registered secret masked (the original is left as it was)."""
    status = span.status
    if status.description:
        status = Status(status.status_code, mask(status.description))
    return ReadableSpan(
        name=mask(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_masked_attributes(span.attributes),
        events=[Event(mask(e.name), _masked_attributes(e.attributes), e.timestamp) for e in span.events],
        links=[Link(link.context, _masked_attributes(link.attributes)) for link in span.links],
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class MaskingSpanExporter(SpanExporter):
    """Masks spans, then hands them to the real exporter (console, in-memory, OTLP)."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([masked_span(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


def init_telemetry(service: str, settings: TelemetrySettings) -> None:
    """Install tracer and meter providers once per process (OTEL_SERVICE_NAME wins over `service`)."""
    global _initialised, _memory_spans, _memory_metrics, _tracer_provider, _meter_provider, _prometheus_registry
    with _lock:
        if _initialised:
            return
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service)})
        provider = TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)))
        endpoint = settings.otlp_endpoint or None
        if settings.traces == "console":
            provider.add_span_processor(SimpleSpanProcessor(MaskingSpanExporter(ConsoleSpanExporter())))
        elif settings.traces == "memory":
            _memory_spans = InMemorySpanExporter()
            provider.add_span_processor(SimpleSpanProcessor(MaskingSpanExporter(_memory_spans)))
        elif settings.traces == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(
                BatchSpanProcessor(
                    MaskingSpanExporter(OTLPSpanExporter(endpoint=endpoint, insecure=True)), schedule_delay_millis=500
                )
            )
        trace.set_tracer_provider(provider)
        _tracer_provider = provider

        readers: list[MetricReader] = []
        if settings.metrics == "console":
            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter(), export_interval_millis=60_000))
        elif settings.metrics == "memory":
            _memory_metrics = InMemoryMetricReader()
            readers.append(_memory_metrics)
        elif settings.metrics == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

            readers.append(
                PeriodicExportingMetricReader(
                    OTLPMetricExporter(endpoint=endpoint, insecure=True), export_interval_millis=10_000
                )
            )
        if settings.prometheus:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader

            # A registry of our own (not prometheus_client's global one): only these meters, once per process.
            _prometheus_registry = CollectorRegistry(auto_describe=True)
            readers.append(PrometheusMetricReader(disable_target_info=True, registry=_prometheus_registry))
        _meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        metrics.set_meter_provider(_meter_provider)
        _initialised = True


def shutdown_telemetry() -> None:
    """Flush exporters (called on graceful stop so the last spans reach the collector)."""
    if _tracer_provider is not None:
        _tracer_provider.force_flush()
        _tracer_provider.shutdown()
    if _meter_provider is not None:
        _meter_provider.shutdown()


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(f"quantumedge.{name}")


def meter(name: str) -> metrics.Meter:
    return metrics.get_meter(f"quantumedge.{name}")


def memory_spans() -> InMemorySpanExporter | None:
    """The in-memory span exporter when telemetry.traces == 'memory' (tests)."""
    return _memory_spans


def memory_metrics() -> InMemoryMetricReader | None:
    return _memory_metrics


def prometheus_registry() -> CollectorRegistry | None:
    """The registry the Prometheus reader fills from every meter (None when telemetry.prometheus is off)."""
    return _prometheus_registry


def inject_headers(headers: dict[str, bytes]) -> dict[str, bytes]:
    """Add the current W3C trace context (traceparent, tracestate) to Kafka-style byte headers."""
    carrier: dict[str, str] = {}
    inject(carrier)
    for key, value in carrier.items():
        headers.setdefault(key, value.encode())
    return headers


def extract_context(headers: Mapping[str, bytes]) -> otel_context.Context:
    """The trace context carried in a record's headers (an empty context when there is none)."""
    carrier = {k: v.decode(errors="replace") for k, v in headers.items() if k in ("traceparent", "tracestate")}
    return extract(carrier)

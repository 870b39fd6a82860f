"""The settings every service shares (Kafka, ports, telemetry) and ConfigError.

The root `Settings` that composes every service's section, and `load_settings`, live in
quantumedge.settings: shared never imports a service. Nothing here ever prompts: a missing
required value raises ConfigError naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

REPO_ROOT = Path(__file__).resolve().parents[3]
SERVICE_NAMES = ("ingest", "inference", "risk", "execution")


class ConfigError(RuntimeError):
    """Configuration is missing or invalid; the message names the setting."""


class KafkaSettings(BaseModel):
    bootstrap: str = "localhost:9092"
    client_id: str = "quantumedge"
    # SASL_SSL (SCRAM over TLS) is what a real deployment runs; PLAINTEXT and SASL_PLAINTEXT put every record
    # (and SASL_PLAINTEXT every password) on the wire in clear, so the bus refuses them unless allow_plaintext.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    allow_plaintext: bool = False
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    # Vault KV path of a process's Kafka credentials (SASL username/password, CA, optional client cert/key);
    # `{service}` is the service name, or `admin` for `quantumedge topics`. Never from env or files.
    credentials_path: str = "quantumedge/kafka/{service}"
    ssl_check_hostname: bool = True
    # The SASL user (Kafka principal User:<name>) of each service, for the ACLs `quantumedge topics` applies.
    principal_template: str = "quantumedge-{service}"
    # Topics are created with these when missing (the chart's Job does the same in a cluster).
    partitions: int = 3
    replication_factor: int = 1
    request_timeout_ms: int = 30_000
    linger_ms: int = 2
    # The longest wait between reconnect attempts to a broker that went away: kafka-python's default (30 s)
    # leaves a client idle for up to that long after the broker is back; the Java client's 1 s resumes fast.
    reconnect_backoff_max_ms: int = Field(default=1_000, ge=50, le=60_000)
    # Prepended to every topic name: isolates tests sharing a broker, or tenants sharing a cluster.
    topic_prefix: str = ""
    # kafka-python's own loggers: WARNING keeps connection chatter out of the logs unless asked for (DEBUG).
    client_log_level: str = "WARNING"

    @field_validator("credentials_path", "principal_template")
    @classmethod
    def _names_the_service(cls, value: str) -> str:
        if "{service}" not in value or value.replace("{service}", "").count("{"):
            raise ValueError("must contain {service} (and no other {...} field)")
        return value

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def needs_credentials(self) -> bool:
        """Whether this protocol authenticates, so the process must read its credentials from Vault."""
        return self.security_protocol != "PLAINTEXT"


class Ports(BaseModel):
    ingest: int = 50051
    inference: int = 50052
    risk: int = 50053
    execution: int = 50054
    # Prometheus /metrics of each service (HTTP); 0 turns a service's endpoint off.
    ingest_metrics: int = Field(default=9101, ge=0, le=65535)
    inference_metrics: int = Field(default=9102, ge=0, le=65535)
    risk_metrics: int = Field(default=9103, ge=0, le=65535)
    execution_metrics: int = Field(default=9104, ge=0, le=65535)
    notify_metrics: int = Field(default=9105, ge=0, le=65535)
    # `quantumedge console` (HTTP).
    console: int = Field(default=8080, ge=0, le=65535)

    def of(self, service: str) -> int:
        return int(getattr(self, service))

    def metrics_of(self, service: str) -> int:
        return int(getattr(self, f"{service}_metrics"))


def port_setting(service: str, kind: str = "") -> str:
    """The environment variable that moves a port: QE_PORTS__RISK, QE_PORTS__RISK_METRICS, QE_PORTS__CONSOLE."""
    return f"QE_PORTS__{service.upper()}" + (f"_{kind.upper()}" if kind else "")


class TelemetrySettings(BaseModel):
    # none | console | otlp | memory (tests). OTEL_EXPORTER_OTLP_ENDPOINT is honoured by the OTLP exporter.
    traces: Literal["none", "console", "otlp", "memory"] = "none"
    metrics: Literal["none", "console", "otlp", "memory"] = "none"
    otlp_endpoint: str = ""
    # Root spans start at ingest, one per market event: sample them in production (children follow the parent).
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    # Serve the same meters as Prometheus text on each service's metrics port (ports.<service>_metrics).
    prometheus: bool = True


def require(value: str, name: str) -> str:
    """Fail fast (like opentelemetry-demo's must_map_env) when a required setting is empty."""
    if not value:
        raise ConfigError(f"missing required setting: {name}")
    return value

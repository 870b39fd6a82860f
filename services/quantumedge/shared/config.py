"""Typed configuration: `QE_` environment variables over an optional YAML file over defaults.

Nested fields use `__` (QE_KAFKA__BOOTSTRAP); the design's flat names (QE_KAFKA_BOOTSTRAP,
QE_VAULT_ADDR, QE_BINANCE_WS_URL, ...) are accepted as aliases. Nothing here ever prompts: a
missing required value raises ConfigError naming it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from quantumedge.console.settings import ConsoleSettings
from quantumedge.execution.settings import ExecutionSettings
from quantumedge.inference.settings import InferenceSettings
from quantumedge.ingest.settings import IngestSettings
from quantumedge.notify.settings import NotifySettings
from quantumedge.risk.settings import RiskSettings
from quantumedge.secrets.settings import VaultSettings
from quantumedge.shared.security_settings import GrpcSettings, SigningSettings

REPO_ROOT = Path(__file__).resolve().parents[3]
SERVICE_NAMES = ("ingest", "inference", "risk", "execution")

# Flat environment names the design and operators use -> nested setting path.
FLAT_ALIASES: dict[str, tuple[str, ...]] = {
    "QE_KAFKA_BOOTSTRAP": ("kafka", "bootstrap"),
    "QE_VAULT_ADDR": ("vault", "addr"),
    "QE_VAULT_TOKEN": ("vault", "token"),
    "QE_VAULT_ROLE": ("vault", "role"),
    "QE_BINANCE_WS_URL": ("ingest", "binance_ws_url"),
    "QE_BINANCE_REST_URL": ("ingest", "binance_rest_url"),
    "QE_VENUE": ("execution", "venue"),
}


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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="QE_",
        env_nested_delimiter="__",
        extra="ignore",
        validate_default=True,
    )

    symbols: list[str] = Field(default_factory=lambda: ["BTCUSDT", "ETHUSDT"])
    bus: Literal["memory", "kafka"] = "kafka"
    embedded: bool = False
    grpc_host: str = "0.0.0.0"  # noqa: S104 - services listen on the pod's interfaces; the chart's NetworkPolicy limits who reaches them
    ports: Ports = Field(default_factory=Ports)
    models_dir: Path = REPO_ROOT / "models"
    data_dir: Path = Path("var")
    log_level: str = "INFO"
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)
    vault: VaultSettings = Field(default_factory=VaultSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    signing: SigningSettings = Field(default_factory=SigningSettings)
    grpc: GrpcSettings = Field(default_factory=GrpcSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, _FlatAliasSource(settings_cls)]
        yaml_file = os.environ.get("QE_CONFIG_FILE")
        if yaml_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file))
        return tuple(sources)


class _FlatAliasSource(PydanticBaseSettingsSource):
    """Maps the flat QE_ names in FLAT_ALIASES onto nested settings (below QE_X__Y, above YAML)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for env_name, path in FLAT_ALIASES.items():
            value = os.environ.get(env_name)
            if value is None:
                continue
            node = out
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
        return out


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; `config_file` (or QE_CONFIG_FILE) names an optional YAML file.

    Raises ConfigError with the offending setting's name instead of a stack of validation noise.
    """
    previous = os.environ.get("QE_CONFIG_FILE")
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"configuration file not found: {path}")
        os.environ["QE_CONFIG_FILE"] = str(path)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors(include_input=False)
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
    finally:
        if config_file is not None:
            if previous is None:
                os.environ.pop("QE_CONFIG_FILE", None)
            else:
                os.environ["QE_CONFIG_FILE"] = previous


def require(value: str, name: str) -> str:
    """Fail fast (like opentelemetry-demo's must_map_env) when a required setting is empty."""
    if not value:
        raise ConfigError(f"missing required setting: {name}")
    return value

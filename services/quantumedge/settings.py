"""Typed configuration: `QE_` environment variables over an optional YAML file over defaults.

The one settings root: it composes the shared sections (quantumedge.shared.config) and every service's own
settings, so shared never imports a service. Nested fields use `__` (QE_KAFKA__BOOTSTRAP); the design's flat
names (QE_KAFKA_BOOTSTRAP, QE_VAULT_ADDR, QE_BINANCE_WS_URL, ...) are accepted as aliases. Nothing here ever
prompts: a missing required value raises ConfigError naming it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError
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
from quantumedge.shared.behaviours import Behaviours, behaviours_for
from quantumedge.shared.config import REPO_ROOT, ConfigError, KafkaSettings, Ports, TelemetrySettings
from quantumedge.shared.secret_reader import SecretReader
from quantumedge.shared.security_settings import GrpcSettings, SigningSettings

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

    @property
    def behaviours(self) -> Behaviours:
        """One flag per behaviour, from `embedded` here and nowhere else (derived on every read, so a copy made
        with model_copy(update={"embedded": ...}) gets the flags of its own kind of run)."""
        return behaviours_for(embedded=self.embedded)

    def secret_reader(self, role: str) -> SecretReader:
        """Log in to Vault as `role` (shared.secret_reader.SecretConnector): how the keyring, the Kafka
        credentials and the operator token hashes in shared reach Vault without shared importing secrets."""
        from quantumedge.secrets.store import connect  # late: hvac only for processes that read Vault

        return connect(self.vault, role, reads_vault=self.behaviours.reads_vault)

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

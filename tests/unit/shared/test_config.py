"""QE_ env vars over YAML over defaults; errors name the setting; nothing prompts."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantumedge.settings import load_settings
from quantumedge.shared.config import ConfigError


def test_defaults_match_the_design_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("QE_KAFKA_BOOTSTRAP", "QE_KAFKA__BOOTSTRAP", "QE_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings()
    assert (s.ports.ingest, s.ports.inference, s.ports.risk, s.ports.execution) == (50051, 50052, 50053, 50054)
    assert s.execution.venue == "paper"


def test_env_over_yaml_over_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "qe.yaml"
    cfg.write_text("symbols: [SOLUSDT]\nkafka:\n  bootstrap: yaml:9092\n  partitions: 6\n")
    monkeypatch.setenv("QE_KAFKA_BOOTSTRAP", "env:9092")
    s = load_settings(cfg)
    assert s.symbols == ["SOLUSDT"]
    assert s.kafka.bootstrap == "env:9092"  # the design's flat name wins over the file
    assert s.kafka.partitions == 6
    monkeypatch.setenv("QE_KAFKA__BOOTSTRAP", "nested:9092")
    assert load_settings(cfg).kafka.bootstrap == "nested:9092"


def test_invalid_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QE_PORTS__RISK", "not-a-port")
    with pytest.raises(ConfigError, match=r"ports\.risk"):
        load_settings()


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_settings(tmp_path / "absent.yaml")

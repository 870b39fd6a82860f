"""One flag per behaviour, chosen from `embedded` in the settings root only: code asks about its behaviour,
QE_EMBEDDED keeps its meaning, and a copy of the settings gets the flags of its own kind of run."""

from __future__ import annotations

import pytest

from quantumedge.execution.venue_setup import check_venue_allowed
from quantumedge.secrets.errors import EmbeddedSecretsError
from quantumedge.secrets.store import connect
from quantumedge.settings import load_settings
from quantumedge.shared.auth import operator_tokens
from quantumedge.shared.behaviours import DEPLOYED, EMBEDDED
from quantumedge.shared.bus.kafka_security import PLAINTEXT_REFUSED, KafkaSecurityError, check_protocol
from quantumedge.shared.config import ConfigError, KafkaSettings


def test_embedded_env_var_chooses_the_embedded_behaviours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QE_EMBEDDED", "true")
    assert load_settings().behaviours == EMBEDDED
    monkeypatch.delenv("QE_EMBEDDED")
    deployed = load_settings()
    assert deployed.behaviours == DEPLOYED
    assert deployed.model_copy(update={"embedded": True}).behaviours == EMBEDDED


def test_embedded_run_reads_no_vault_and_trades_paper_only() -> None:
    settings = load_settings(embedded=True, vault={"addr": "http://127.0.0.1:1"}, execution={"venue": "testnet"})
    flags = settings.behaviours
    assert not (flags.reads_vault or flags.operator_tokens_from_vault or flags.signing_keys_from_vault)
    assert flags.paper_venue_only and flags.kafka_plaintext_allowed and not flags.notify_secrets_from_vault
    with pytest.raises(EmbeddedSecretsError):
        settings.secret_reader("risk")
    with pytest.raises(EmbeddedSecretsError):
        connect(settings, "risk")  # the whole Settings: its behaviours are honoured
    with pytest.raises(ConfigError):
        check_venue_allowed(settings)
    # Vault is configured, but an embedded run never reads operator tokens from it: fail closed, no login.
    assert not operator_tokens(settings, "risk")


def test_plaintext_kafka_follows_the_flag_not_the_run_kind() -> None:
    plain = KafkaSettings(security_protocol="PLAINTEXT")
    with pytest.raises(KafkaSecurityError) as refused:
        check_protocol(plain, plaintext_allowed=DEPLOYED.kafka_plaintext_allowed)
    assert refused.value.code == PLAINTEXT_REFUSED
    check_protocol(plain, plaintext_allowed=EMBEDDED.kafka_plaintext_allowed)

"""Where the signing keyring comes from, and what stops a service that could not sign or verify."""

from __future__ import annotations

import pytest

from quantumedge.settings import Settings
from quantumedge.shared import topics
from quantumedge.shared.config import ConfigError
from quantumedge.shared.keyring import keyring_for, process_keyring
from quantumedge.shared.security_settings import SigningSettings
from quantumedge.shared.signing import SigningKey
from quantumedge.v1 import risk_pb2


def _kafka(signing: SigningSettings | None = None) -> Settings:
    return Settings(bus="kafka", signing=signing or SigningSettings())


def test_the_in_process_bus_shares_one_in_memory_key_pair() -> None:
    settings = Settings(bus="memory")
    risk, execution = keyring_for(settings, "risk"), keyring_for(settings, "execution")
    assert risk is execution is process_keyring() and risk.signing_key_id.startswith("ephemeral-")


def test_without_vault_or_keys_risk_and_execution_do_not_start() -> None:
    for role, names in (("risk", "QE_SIGNING__PRIVATE_KEY"), ("execution", "QE_SIGNING__PUBLIC_KEYS")):
        with pytest.raises(ConfigError, match="QE_VAULT_ADDR") as err:
            keyring_for(_kafka(), role)
        assert names in str(err.value)


def test_a_private_key_in_settings_needs_the_second_switch_and_is_never_shown() -> None:
    key = SigningKey.generate("local-1")
    spec = f"local-1:{key.seed_b64()}"
    with pytest.raises(ConfigError, match="ALLOW_ENV_KEY") as err:
        keyring_for(_kafka(SigningSettings(private_key=spec)), "risk")
    assert key.seed_b64() not in str(err.value)
    risk = keyring_for(_kafka(SigningSettings(private_key=spec, allow_env_key=True)), "risk")
    public = f"local-1:{key.public_b64()}"
    execution = keyring_for(_kafka(SigningSettings(public_keys=public)), "execution")
    decision = risk.sign(risk_pb2.RiskDecision(decision_id="d", symbol="BTCUSDT"), topics.DECISIONS, "BTCUSDT")
    assert execution.verify(decision, topics.DECISIONS, "BTCUSDT").ok
    with pytest.raises(Exception, match="no signing key"):
        execution.sign(decision, topics.DECISIONS, "BTCUSDT")  # execution never holds one


def test_risk_refuses_to_sign_with_a_retired_key() -> None:
    key = SigningKey.generate("old")
    settings = SigningSettings(private_key=f"old:{key.seed_b64()}", allow_env_key=True, retired_keys="old")
    with pytest.raises(ConfigError, match="retired"):
        keyring_for(_kafka(settings), "risk")


def test_bad_key_material_is_named_not_echoed() -> None:
    with pytest.raises(ConfigError, match="base64"):
        keyring_for(_kafka(SigningSettings(public_keys="k1:not*base64")), "execution")

"""Vault settings: env names, defaults, validation; the token never shows in a repr."""

from __future__ import annotations

import hashlib
import secrets

import pytest

from quantumedge.secrets.settings import VaultSettings
from quantumedge.settings import load_settings
from quantumedge.shared.config import ConfigError


def test_env_names_reach_the_vault_section(monkeypatch: pytest.MonkeyPatch) -> None:
    token = "hvs." + secrets.token_urlsafe(18)
    monkeypatch.setenv("QE_VAULT_ADDR", "http://127.0.0.1:8200")
    monkeypatch.setenv("QE_VAULT_TOKEN", token)
    monkeypatch.setenv("QE_VAULT_ROLE", "exec-blue")
    monkeypatch.setenv("QE_VAULT__AUTH_METHOD", "kubernetes")
    monkeypatch.setenv("QE_VAULT__KV_MOUNT", "kv")
    vault = load_settings().vault
    assert vault.addr == "http://127.0.0.1:8200" and vault.auth_method == "kubernetes" and vault.kv_mount == "kv"
    assert vault.token.get_secret_value() == token
    assert vault.role_for("execution") == "exec-blue"
    assert token not in repr(vault) and token not in str(load_settings())


def test_defaults_need_nothing() -> None:
    vault = VaultSettings()
    assert vault.addr == "" and vault.auth_method == "token" and vault.kv_mount == "secret"
    assert vault.role_for("risk") == "risk" and vault.policy_name("risk") == "quantumedge-risk"
    assert vault.allow_env_credentials is False and vault.operator_token_sha256 == ""


def test_operator_hash_must_be_sha256_hex() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    assert VaultSettings(operator_token_sha256=digest.upper()).operator_token_sha256 == digest
    assert VaultSettings(operator_token_sha256=f"alice:{digest}, bob:{digest}").operator_token_sha256
    with pytest.raises(ValueError, match="sha256"):
        VaultSettings(operator_token_sha256="not-a-hash")
    with pytest.raises(ConfigError, match=r"vault\.operator_token_sha256"):
        load_settings(vault={"operator_token_sha256": "plain-token-by-mistake"})


def test_bad_auth_method_or_fraction_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"vault\.auth_method"):
        load_settings(vault={"auth_method": "password"})
    with pytest.raises(ConfigError, match=r"vault\.renew_fraction"):
        load_settings(vault={"renew_fraction": 0.99})

"""Start-up rules without a Vault: paper/embedded need nothing, testnet/live refuse clearly, env keys testnet only."""

from __future__ import annotations

import secrets
import socket

import pytest

from quantumedge.secrets import paths
from quantumedge.secrets.errors import EmbeddedSecretsError, SecretsRequiredError
from quantumedge.secrets.require import SecretsConfigError, require_secrets
from quantumedge.secrets.store import connect
from quantumedge.settings import load_settings


def _never_connect(*_args: object, **_kw: object) -> None:
    raise AssertionError("must not contact Vault")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("QE_VAULT_ADDR", "QE_VAULT_TOKEN", "QE_EXCHANGE_API_KEY", "QE_EXCHANGE_API_SECRET", "QE_VENUE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("embedded", [True, False])
def test_paper_needs_no_secrets_and_never_contacts_vault(embedded: bool) -> None:
    settings = load_settings(embedded=embedded, vault={"addr": "http://127.0.0.1:1"})
    for role in paths.SERVICE_ROLES:
        got = require_secrets(settings, role, connect_fn=_never_connect)
        assert got.source == "none" and got.values == {} and got.store is None


def test_embedded_mode_refuses_any_secret_read() -> None:
    settings = load_settings(embedded=True, execution={"venue": "testnet"})
    with pytest.raises(EmbeddedSecretsError, match="binance-testnet"):
        require_secrets(settings, "execution", connect_fn=_never_connect)
    with pytest.raises(EmbeddedSecretsError):
        connect(settings, "execution")
    with pytest.raises(EmbeddedSecretsError):
        connect(settings.vault, "risk", reads_vault=False)


def test_testnet_without_vault_address_refuses_to_start_naming_path_and_setting() -> None:
    settings = load_settings(execution={"venue": "testnet"})
    with pytest.raises(SecretsRequiredError) as err:
        require_secrets(settings, "execution")
    message = str(err.value)
    assert "quantumedge/exchange/binance-testnet" in message and "QE_VAULT_ADDR" in message
    assert err.value.failures[0].kind == "not configured"


def test_unreachable_vault_is_named_as_such() -> None:
    addr = f"http://127.0.0.1:{_closed_port()}"
    settings = load_settings(execution={"venue": "live"}, vault={"addr": addr, "token": "t-" + secrets.token_hex(8)})
    with pytest.raises(SecretsRequiredError) as err:
        require_secrets(settings, "execution")
    assert err.value.failures[0].kind == "unreachable"
    assert "quantumedge/exchange/binance-live" in str(err.value) and addr in str(err.value)


def test_env_credentials_only_for_testnet_and_only_when_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    key, sec = secrets.token_hex(16), secrets.token_hex(32)
    monkeypatch.setenv("QE_EXCHANGE_API_KEY", key)
    monkeypatch.setenv("QE_EXCHANGE_API_SECRET", sec)
    allowed = load_settings(execution={"venue": "testnet"}, vault={"allow_env_credentials": True})
    got = require_secrets(allowed, "execution", connect_fn=_never_connect)
    assert got.source == "env" and got[paths.EXCHANGE_TESTNET]["api_key"] == key
    assert key not in repr(got) and sec not in repr(got[paths.EXCHANGE_TESTNET])

    # Not allowed: env keys are ignored and Vault is required.
    with pytest.raises(SecretsRequiredError, match="QE_VAULT_ADDR"):
        require_secrets(load_settings(execution={"venue": "testnet"}), "execution")
    # Live: the flag is refused, and so is the mere presence of keys in the environment.
    with pytest.raises(SecretsConfigError, match=r"only valid with execution\.venue=testnet"):
        require_secrets(load_settings(execution={"venue": "live"}, vault={"allow_env_credentials": True}), "execution")
    with pytest.raises(SecretsConfigError, match="QE_EXCHANGE_API_KEY"):
        require_secrets(load_settings(execution={"venue": "live"}), "execution", connect_fn=_never_connect)


def test_allowed_env_credentials_must_be_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QE_EXCHANGE_API_KEY", secrets.token_hex(16))
    settings = load_settings(execution={"venue": "testnet"}, vault={"allow_env_credentials": True})
    with pytest.raises(SecretsRequiredError, match="QE_EXCHANGE_API_SECRET"):
        require_secrets(settings, "execution", connect_fn=_never_connect)

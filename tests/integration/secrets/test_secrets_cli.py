"""`quantumedge secrets` against a real Vault-API server: init is idempotent, check proves least privilege
(and catches a leak), rotate writes versions from env/stdin, and no value ever reaches the output."""

from __future__ import annotations

import hashlib
import io
import json

import pytest

from quantumedge.secrets import paths
from tests.integration.secrets.conftest import QeVault, exchange_keys

pytestmark = pytest.mark.integration


def test_init_is_idempotent_and_stores_only_the_operator_token_hash(qe_vault: QeVault, capsys) -> None:
    assert qe_vault.cli("init") == 0  # second run on the same layout
    out = capsys.readouterr().out
    assert "already enabled" in out and qe_vault.operator_token not in out
    stored = qe_vault.root.secrets.kv.v2.read_secret_version(
        qe_vault.base.operator_token_path, mount_point=qe_vault.base.kv_mount, raise_on_deleted_version=True
    )["data"]["data"]
    assert stored == {"operator": hashlib.sha256(qe_vault.operator_token.encode()).hexdigest()}
    policies = qe_vault.root.sys.list_acl_policies()["data"]["keys"]
    assert {qe_vault.base.policy_name(r) for r in paths.ALL_ROLES} <= set(policies)


def test_check_reports_every_role_ok(qe_vault: QeVault, capsys) -> None:
    keys = exchange_keys()
    qe_vault.write(paths.EXCHANGE_TESTNET, keys)
    assert qe_vault.cli("check") == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "checks passed" in out
    # Execution on testnet is checked as execution-testnet: it reads its key and never the live one.
    assert f"OK   execution-testnet read     {paths.EXCHANGE_TESTNET}: readable" in out
    assert f"OK   execution-testnet denied   {paths.EXCHANGE_LIVE}: denied" in out
    assert f"OK   ingest            denied   {paths.EXCHANGE_TESTNET}: denied" in out
    assert keys["api_key"] not in out and keys["api_secret"] not in out


def test_check_fails_on_a_missing_required_secret_and_on_a_leak(qe_vault: QeVault, capsys) -> None:
    assert qe_vault.cli("check", "--roles", "execution", "--venue", "live") == 1
    assert f"FAIL execution-live    read     {paths.EXCHANGE_LIVE}: not found" in capsys.readouterr().out

    qe_vault.write(paths.EXCHANGE_TESTNET, exchange_keys())
    leaky = f'path "{qe_vault.base.kv_mount}/data/quantumedge/exchange/*" {{ capabilities = ["read"] }}'
    qe_vault.root.sys.create_or_update_policy(qe_vault.base.policy_name("ingest"), leaky)
    assert qe_vault.cli("check", "--roles", "ingest") == 1
    assert f"FAIL ingest            denied   {paths.EXCHANGE_TESTNET}: LEAK" in capsys.readouterr().out


def test_rotate_from_stdin_json_and_merge(qe_vault: QeVault, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    first = exchange_keys()
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(first)))
    assert qe_vault.cli("rotate", paths.EXCHANGE_LIVE, "--stdin-json") == 0
    extra = exchange_keys()["api_key"]
    monkeypatch.setattr("sys.stdin", io.StringIO(extra + "\n"))
    assert qe_vault.cli("rotate", paths.EXCHANGE_LIVE, "--stdin-key", "private_key", "--merge") == 0
    out = capsys.readouterr().out
    assert f"wrote {paths.EXCHANGE_LIVE} version 1" in out and f"wrote {paths.EXCHANGE_LIVE} version 2" in out
    assert first["api_secret"] not in out and extra not in out
    stored = qe_vault.root.secrets.kv.v2.read_secret_version(
        paths.EXCHANGE_LIVE, mount_point=qe_vault.base.kv_mount, raise_on_deleted_version=True
    )["data"]
    assert stored["data"] == first | {"private_key": extra} and stored["metadata"]["version"] == 2


def test_operator_role_can_rotate_but_not_read_keys_nor_check(qe_vault: QeVault, monkeypatch, capsys) -> None:
    """The operator AppRole (not the admin token) is enough for rotate; check mints secret-ids, so it is not."""
    operator = qe_vault.approle_settings("operator")
    monkeypatch.delenv("QE_VAULT_TOKEN")
    monkeypatch.setenv("QE_VAULT__AUTH_METHOD", "approle")
    monkeypatch.setenv("QE_VAULT__APPROLE_ROLE_ID", operator.approle_role_id)
    monkeypatch.setenv("QE_VAULT__APPROLE_SECRET_ID", operator.approle_secret_id.get_secret_value())
    keys = exchange_keys()
    monkeypatch.setenv("QE_K", keys["api_key"])
    monkeypatch.setenv("QE_S", keys["api_secret"])
    from_env = ("--from-env", "api_key=QE_K", "--from-env", "api_secret=QE_S")
    assert qe_vault.cli("rotate", paths.EXCHANGE_TESTNET, *from_env) == 0
    capsys.readouterr()
    assert qe_vault.cli("check", "--roles", "execution") == 1
    assert "FAIL execution-testnet login" in capsys.readouterr().out  # cannot mint a secret-id: permission denied

    from quantumedge.secrets.errors import SecretUnavailable
    from quantumedge.secrets.store import connect

    with connect(qe_vault.approle_settings("operator"), "operator") as store:
        with pytest.raises(SecretUnavailable, match="permission denied"):
            store.read(paths.EXCHANGE_TESTNET)
        assert store.version(paths.EXCHANGE_TESTNET) == 1  # metadata only


def test_seeding_helper_gives_a_service_what_it_needs(vault) -> None:
    """The helper the cross-service 'no secret in any log line' test uses."""
    from quantumedge.secrets.require import require_secrets
    from quantumedge.settings import load_settings
    from tests.integration.secrets.seeding import seed_known_secrets

    seeded = seed_known_secrets(vault.addr, vault.token)
    try:
        env = seeded.service_env("execution")
        with pytest.MonkeyPatch.context() as mp:
            for name, value in env.items():
                mp.setenv(name, value)
            mp.setenv("QE_VENUE", "testnet")
            loaded = require_secrets(load_settings(), "execution")
        try:
            assert dict(loaded[paths.EXCHANGE_TESTNET]) == seeded.exchange
        finally:
            loaded.close()
        assert set(seeded.exchange.values()) <= set(seeded.values) and seeded.operator_token in seeded.values
    finally:
        seeded.cleanup()

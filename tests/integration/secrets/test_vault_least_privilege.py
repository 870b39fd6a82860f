"""Least privilege in a real Vault-API server (OpenBao), each refusal seen from the side that is refused:

- one execution role per venue: testnet credentials never read the live key, and the other way round;
- the operator policy cannot read service role-ids, mint their secret-ids or change their roles;
- AppRole secret-ids expire, run out of uses and are bound to CIDRs; init refuses unbounded ones;
- `secrets init --issue-secret-ids` / `secrets issue-secret-id` hand out secret-ids response-wrapped: the
  output holds only a single-use wrapping token, a service logs in by unwrapping it, and a token someone
  else unwrapped first (or that wraps anything but a secret-id) is refused.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import hvac
import hvac.exceptions
import pytest

from quantumedge.secrets import errors, paths
from quantumedge.secrets.errors import SecretUnavailable
from quantumedge.secrets.store import connect
from tests.integration.secrets.conftest import QeVault, exchange_keys

pytestmark = pytest.mark.integration

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_WRAPPED = re.compile(r"^approle (\S+): role_id (\S+), wrapped secret_id (\S+) ", re.M)


def _login_refused(qe_vault: QeVault, role: str, **settings: object) -> SecretUnavailable:
    with pytest.raises(SecretUnavailable) as err:
        connect(qe_vault.settings(auth_method="approle", **settings), role, start=False).close()
    return err.value


@pytest.mark.parametrize(("role", "own", "other"), [
    ("execution-testnet", paths.EXCHANGE_TESTNET, paths.EXCHANGE_LIVE),
    ("execution-live", paths.EXCHANGE_LIVE, paths.EXCHANGE_TESTNET),
])  # fmt: skip
def test_each_venue_role_reads_its_own_key_and_never_the_other(qe_vault: QeVault, role, own, other) -> None:
    qe_vault.write(paths.EXCHANGE_TESTNET, exchange_keys())
    qe_vault.write(paths.EXCHANGE_LIVE, exchange_keys())
    with connect(qe_vault.approle_settings(role), role) as store:
        assert store.read(own)["api_key"]
        assert store.read(qe_vault.base.operator_token_path)  # the base execution policy comes along
        with pytest.raises(SecretUnavailable) as err:
            store.read(other)
        assert err.value.kind == errors.PERMISSION_DENIED


def test_paper_execution_reads_no_exchange_key(qe_vault: QeVault) -> None:
    qe_vault.write(paths.EXCHANGE_TESTNET, exchange_keys())
    qe_vault.write(paths.EXCHANGE_LIVE, exchange_keys())
    with connect(qe_vault.approle_settings("execution"), "execution") as store:
        for path in (paths.EXCHANGE_TESTNET, paths.EXCHANGE_LIVE):
            with pytest.raises(SecretUnavailable) as err:
                store.read(path)
            assert err.value.kind == errors.PERMISSION_DENIED


def test_operator_cannot_read_role_ids_mint_secret_ids_or_change_roles(qe_vault: QeVault) -> None:
    mount = qe_vault.base.approle_mount
    with connect(qe_vault.approle_settings("operator"), "operator") as store:
        operator = hvac.Client(url=qe_vault.addr, token=store.client.token, timeout=10)
        for role in (*paths.VAULT_ROLES, "operator"):
            with pytest.raises(hvac.exceptions.Forbidden):
                operator.auth.approle.read_role_id(role, mount_point=mount)
            with pytest.raises(hvac.exceptions.Forbidden):
                operator.auth.approle.generate_secret_id(role, mount_point=mount)
            with pytest.raises(hvac.exceptions.Forbidden):
                operator.auth.approle.generate_secret_id(role, mount_point=mount, wrap_ttl="60s")
        with pytest.raises(hvac.exceptions.Forbidden):
            operator.auth.approle.create_or_update_approle(
                "execution-live", token_policies=[qe_vault.base.policy_name("operator")], mount_point=mount
            )
        with pytest.raises(hvac.exceptions.Forbidden):
            operator.auth.kubernetes.create_role(
                "execution-live", ["attacker"], ["default"], mount_point=qe_vault.base.kubernetes_mount
            )
    # Nothing was changed by the attempts: execution-live still carries only its own policies.
    role = qe_vault.root.auth.approle.read_role("execution-live", mount_point=mount)["data"]
    assert sorted(role["token_policies"]) == sorted(qe_vault.policies("execution-live"))


def test_roles_get_bounded_secret_ids_and_init_refuses_unbounded_ones(qe_vault: QeVault, capsys) -> None:
    mount = qe_vault.base.approle_mount
    for role in (*paths.VAULT_ROLES, "operator"):
        data = qe_vault.root.auth.approle.read_role(role, mount_point=mount)["data"]
        assert data["secret_id_ttl"] == 3600 and data["secret_id_num_uses"] == 10, role
    capsys.readouterr()
    assert qe_vault.cli("init", "--execution-venues", "testnet,live", "--secret-id-ttl", "0") == 2
    assert qe_vault.cli("init", "--execution-venues", "testnet,live", "--secret-id-num-uses", "0") == 2
    assert qe_vault.cli("init", "--bound-cidrs", "10.0.0.0/33") == 2
    err = capsys.readouterr().err
    assert "--secret-id-ttl" in err and "--secret-id-num-uses" in err and "--bound-cidrs" in err
    # Refused before anything was written.
    data = qe_vault.root.auth.approle.read_role("execution-live", mount_point=mount)["data"]
    assert data["secret_id_ttl"] == 3600 and data["secret_id_num_uses"] == 10


def test_a_secret_id_runs_out_of_uses(qe_vault: QeVault) -> None:
    assert qe_vault.cli("init", "--execution-venues", "testnet,live", "--secret-id-num-uses", "2") == 0
    creds = qe_vault.approle_settings("risk")
    for _ in range(2):
        connect(creds, "risk", start=False).close()
    refused = _login_refused(
        qe_vault, "risk", approle_role_id=creds.approle_role_id, approle_secret_id=creds.approle_secret_id
    )
    assert refused.kind == errors.LOGIN_FAILED


def test_a_secret_id_expires(qe_vault: QeVault) -> None:
    assert qe_vault.cli("init", "--execution-venues", "testnet,live", "--secret-id-ttl", "2s") == 0
    creds = qe_vault.approle_settings("risk")
    time.sleep(3)  # past the secret-id's TTL (Vault's clock decides, not ours)
    refused = _login_refused(
        qe_vault, "risk", approle_role_id=creds.approle_role_id, approle_secret_id=creds.approle_secret_id
    )
    assert refused.kind == errors.LOGIN_FAILED


def test_secret_ids_and_tokens_are_bound_to_cidrs(qe_vault: QeVault) -> None:
    # 192.0.2.0/24 is TEST-NET-1: nothing here ever has that address, so no login can come from it.
    assert qe_vault.cli("init", "--execution-venues", "testnet,live", "--bound-cidrs", "192.0.2.0/24") == 0
    data = qe_vault.root.auth.approle.read_role("risk", mount_point=qe_vault.base.approle_mount)["data"]
    assert data["secret_id_bound_cidrs"] == ["192.0.2.0/24"] and data["token_bound_cidrs"] == ["192.0.2.0/24"]
    creds = qe_vault.approle_settings("risk")
    refused = _login_refused(
        qe_vault, "risk", approle_role_id=creds.approle_role_id, approle_secret_id=creds.approle_secret_id
    )
    assert refused.kind == errors.LOGIN_FAILED
    # The operator role has its own binding and was left open: the CLI still works from here.
    connect(qe_vault.approle_settings("operator"), "operator", start=False).close()

    assert qe_vault.cli("init", "--execution-venues", "testnet,live", "--bound-cidrs", "127.0.0.1/32") == 0
    with connect(qe_vault.approle_settings("risk"), "risk", start=False) as store:
        assert store.stats.logins == 1


def _wrapped(out: str) -> dict[str, tuple[str, str]]:
    return {role: (role_id, token) for role, role_id, token in _WRAPPED.findall(out)}


def test_init_delivers_secret_ids_wrapped_and_a_service_unwraps_its_own(qe_vault: QeVault, tmp_path: Path, capsys):
    keys = exchange_keys()
    qe_vault.write(paths.EXCHANGE_TESTNET, keys)
    capsys.readouterr()
    assert qe_vault.cli("init", "--execution-venues", "testnet,live", "--issue-secret-ids", "--wrap-ttl", "5m") == 0
    out = capsys.readouterr().out
    wrapped = _wrapped(out)
    assert set(wrapped) == {*paths.VAULT_ROLES, "operator"}
    # Only role-ids (not secret) are UUIDs in the output; no secret-id is ever printed.
    role_ids = {role_id for role_id, _ in wrapped.values()}
    assert set(_UUID.findall(out)) == role_ids

    role_id, token = wrapped["execution-testnet"]
    token_file = tmp_path / "secret-id.wrapped"  # what the platform mounts for the pod
    token_file.write_text(token + "\n")
    settings = qe_vault.settings(
        auth_method="approle", approle_role_id=role_id, approle_secret_id_wrapped_file=str(token_file)
    )
    with connect(settings, "execution-testnet") as store:
        assert dict(store.read(paths.EXCHANGE_TESTNET)) == keys
        store.client.auth.token.revoke_self()
        # A re-login (token revoked) reuses the secret-id this process unwrapped: the wrapping token is spent.
        assert store.read(paths.EXCHANGE_TESTNET)["api_key"] == keys["api_key"]
        assert store.stats.relogins == 1
    with pytest.raises(hvac.exceptions.VaultError):
        qe_vault.root.sys.unwrap(token)  # single use: nobody can unwrap it again


def test_a_wrapped_secret_id_someone_else_unwrapped_is_refused(qe_vault: QeVault, capsys) -> None:
    capsys.readouterr()
    assert qe_vault.cli("issue-secret-id", "--roles", "risk,execution-live", "--wrap-ttl", "2m") == 0
    wrapped = _wrapped(capsys.readouterr().out)
    assert set(wrapped) == {"risk", "execution-live"}
    role_id, token = wrapped["risk"]
    stolen = qe_vault.root.sys.unwrap(token)["data"]["secret_id"]  # an intermediary got there first
    assert stolen
    refused = _login_refused(qe_vault, "risk", approle_role_id=role_id, approle_secret_id_wrapped=token)
    assert refused.kind == errors.LOGIN_FAILED and "unwrapped" in refused.reason


def test_a_wrapping_token_that_holds_anything_but_a_secret_id_is_refused(qe_vault: QeVault) -> None:
    role_id = qe_vault.root.auth.approle.read_role_id("risk", mount_point=qe_vault.base.approle_mount)
    # Whoever can wrap data could wrap a secret-id of their own choosing: the creation path gives it away.
    forged = qe_vault.root.adapter.post(
        "/v1/sys/wrapping/wrap", json={"secret_id": "not-issued-by-approle"}, headers={"X-Vault-Wrap-TTL": "60s"}
    )["wrap_info"]["token"]
    refused = _login_refused(
        qe_vault, "risk", approle_role_id=role_id["data"]["role_id"], approle_secret_id_wrapped=forged
    )
    assert refused.kind == errors.LOGIN_FAILED and "creation path" in refused.reason
    qe_vault.root.sys.unwrap(forged)  # still unspent: the login never unwrapped it


def test_issue_secret_id_needs_known_roles_and_a_bounded_wrap(qe_vault: QeVault, capsys) -> None:
    assert qe_vault.cli("issue-secret-id", "--roles", "execution-paper") == 2
    assert qe_vault.cli("issue-secret-id", "--roles", "risk", "--wrap-ttl", "0") == 2
    assert qe_vault.cli("issue-secret-id", "--roles", "risk", "--cidrs", "nonsense") == 2
    err = capsys.readouterr().err
    assert "unknown role" in err and "--wrap-ttl" in err and "--cidrs" in err


def test_the_cli_logs_in_with_a_wrapped_operator_secret_id(qe_vault: QeVault, monkeypatch, capsys) -> None:
    capsys.readouterr()
    assert qe_vault.cli("issue-secret-id", "--roles", "operator") == 0
    role_id, token = _wrapped(capsys.readouterr().out)["operator"]
    monkeypatch.delenv("QE_VAULT_TOKEN")
    monkeypatch.setenv("QE_VAULT__AUTH_METHOD", "approle")
    monkeypatch.setenv("QE_VAULT__APPROLE_ROLE_ID", role_id)
    monkeypatch.setenv("QE_VAULT__APPROLE_SECRET_ID_WRAPPED", token)
    keys = exchange_keys()
    monkeypatch.setenv("QE_K", keys["api_key"])
    monkeypatch.setenv("QE_S", keys["api_secret"])
    assert (
        qe_vault.cli("rotate", paths.EXCHANGE_TESTNET, "--from-env", "api_key=QE_K", "--from-env", "api_secret=QE_S")
        == 0
    )
    out = capsys.readouterr().out
    assert f"wrote {paths.EXCHANGE_TESTNET} version 1" in out and token not in out

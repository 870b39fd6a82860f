"""Each auth method logs in against a real Vault-API server, and each role reads only what its policy allows."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantumedge.secrets import errors, paths
from quantumedge.secrets.errors import SecretUnavailable
from quantumedge.secrets.store import connect
from tests.integration.secrets.conftest import QeVault, exchange_keys
from tests.integration.secrets.k8s_peer import TokenReviewServer

pytestmark = pytest.mark.integration


def test_token_login_reads_a_secret_and_its_version(qe_vault: QeVault) -> None:
    keys = exchange_keys()
    qe_vault.write(paths.EXCHANGE_TESTNET, keys)
    with connect(
        qe_vault.token_settings(qe_vault.service_token("execution-testnet", ttl="5m")), "execution-testnet"
    ) as store:
        data = store.read(paths.EXCHANGE_TESTNET)
        assert dict(data) == keys and data.version == 1
        assert store.version(paths.EXCHANGE_TESTNET) == 1
        assert keys["api_secret"] not in repr(data) + repr(store)


def test_approle_login_from_env_settings_and_from_mounted_files(qe_vault: QeVault, tmp_path: Path) -> None:
    keys = exchange_keys()
    qe_vault.write(paths.EXCHANGE_LIVE, keys)
    with connect(qe_vault.approle_settings("execution-live"), "execution-live") as store:
        assert store.read(paths.EXCHANGE_LIVE)["api_key"] == keys["api_key"]
        assert store.stats.logins == 1

    # The platform may mount the credentials as files instead (re-read at each login).
    creds = qe_vault.approle_settings("execution-live")
    (tmp_path / "role-id").write_text(creds.approle_role_id + "\n")
    (tmp_path / "secret-id").write_text(creds.approle_secret_id.get_secret_value())
    from_files = qe_vault.settings(
        auth_method="approle",
        approle_role_id_file=str(tmp_path / "role-id"),
        approle_secret_id_file=str(tmp_path / "secret-id"),
    )
    with connect(from_files, "execution-live") as store:
        assert store.read(paths.EXCHANGE_LIVE)["api_secret"] == keys["api_secret"]


def test_only_execution_reads_exchange_keys(qe_vault: QeVault) -> None:
    qe_vault.write(paths.EXCHANGE_TESTNET, exchange_keys())
    for role in ("ingest", "inference", "risk"):
        with connect(qe_vault.approle_settings(role), role) as store:
            with pytest.raises(SecretUnavailable) as err:
                store.read(paths.EXCHANGE_TESTNET)
            assert err.value.kind == errors.PERMISSION_DENIED
            assert paths.EXCHANGE_TESTNET in str(err.value) and qe_vault.base.policy_name(role) in str(err.value)


def test_wrong_approle_credentials_are_a_clear_login_failure(qe_vault: QeVault) -> None:
    settings = qe_vault.approle_settings("execution", approle_secret_id="not-the-secret-id")
    with pytest.raises(SecretUnavailable) as err:
        connect(settings, "execution")
    assert err.value.kind == errors.LOGIN_FAILED
    assert "approle login as role 'execution' refused" in str(err.value)


def test_kubernetes_login_through_a_real_token_review(qe_vault: QeVault, tmp_path: Path) -> None:
    keys = exchange_keys()
    qe_vault.write(paths.EXCHANGE_TESTNET, keys)
    with TokenReviewServer() as k8s:
        (tmp_path / "ca.crt").write_text(k8s.ca_pem)
        code = qe_vault.cli(
            "init",
            "--no-operator-token",
            "--auth",
            "kubernetes",
            "--kubernetes-host",
            k8s.host,
            "--kubernetes-ca-file",
            str(tmp_path / "ca.crt"),
            "--kubernetes-disable-local-ca-jwt",
            "--kubernetes-namespace",
            "qe-test",
        )
        assert code == 0
        jwt_file = tmp_path / "token"  # what kubelet projects into the pod
        jwt_file.write_text(k8s.issue("qe-test", "quantumedge-execution"))
        settings = qe_vault.settings(auth_method="kubernetes", kubernetes_jwt_file=str(jwt_file))
        # Execution on testnet logs in as execution-testnet (bound to execution's service account).
        with connect(settings, "execution-testnet") as store:
            assert store.read(paths.EXCHANGE_TESTNET)["api_key"] == keys["api_key"]
        assert k8s.reviews == ["system:serviceaccount:qe-test:quantumedge-execution"]

        # The ingest service account may not log in as the execution role.
        jwt_file.write_text(k8s.issue("qe-test", "quantumedge-ingest"))
        with pytest.raises(SecretUnavailable) as err:
            connect(settings, "execution")
        assert err.value.kind == errors.LOGIN_FAILED and "kubernetes login" in str(err.value)

        # A token the API server no longer accepts (e.g. its pod is gone) is refused at TokenReview.
        stale = k8s.issue("qe-test", "quantumedge-execution")
        k8s.revoke(stale)
        jwt_file.write_text(stale)
        with pytest.raises(SecretUnavailable) as err:
            connect(settings, "execution")
        assert err.value.kind == errors.LOGIN_FAILED


def test_missing_credentials_name_the_setting(qe_vault: QeVault, tmp_path: Path) -> None:
    with pytest.raises(SecretUnavailable, match="QE_VAULT__APPROLE_ROLE_ID"):
        connect(qe_vault.settings(auth_method="approle"), "execution")
    with pytest.raises(SecretUnavailable, match="QE_VAULT_TOKEN"):
        connect(qe_vault.settings(auth_method="token"), "execution")
    with pytest.raises(SecretUnavailable, match="cannot read"):
        connect(qe_vault.settings(auth_method="kubernetes", kubernetes_jwt_file=str(tmp_path / "none")), "risk")

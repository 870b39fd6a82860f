"""Risk's signing keyring in a real Vault-API server (OpenBao): written by `secrets rotate --signing-key` as the
operator role, read by risk (private + public) and execution (public only, by policy), rotated and retired
while both keep running."""

from __future__ import annotations

import time

import pytest

from quantumedge.secrets import paths
from quantumedge.secrets.errors import SecretUnavailable
from quantumedge.secrets.store import connect
from quantumedge.settings import Settings
from quantumedge.shared import signing, topics
from quantumedge.shared.config import ConfigError
from quantumedge.shared.keyring import keyring_for
from quantumedge.shared.security_settings import SigningSettings
from quantumedge.v1 import risk_pb2
from tests.integration.secrets.conftest import QeVault
from tests.support.waiting import wait_for


def _as_operator(qe: QeVault, monkeypatch: pytest.MonkeyPatch) -> None:
    operator = qe.approle_settings("operator")
    monkeypatch.delenv("QE_VAULT_TOKEN")
    monkeypatch.setenv("QE_VAULT__AUTH_METHOD", "approle")
    monkeypatch.setenv("QE_VAULT__APPROLE_ROLE_ID", operator.approle_role_id)
    monkeypatch.setenv("QE_VAULT__APPROLE_SECRET_ID", operator.approle_secret_id.get_secret_value())


def _service(qe: QeVault, role: str) -> Settings:
    # Not the in-process bus: the keyring then comes from Vault, as in a deployment.
    return Settings(bus="kafka", vault=qe.approle_settings(role), signing=SigningSettings(refresh_min_interval_s=0))


def _decision(n: int) -> risk_pb2.RiskDecision:
    return risk_pb2.RiskDecision(decision_id=f"d-{n}", symbol="BTCUSDT", decided_time_ns=time.time_ns())


def test_rotation_and_retirement_reach_running_services_and_only_risk_reads_the_private_key(
    qe_vault: QeVault, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # Before any key exists, neither service starts (one line naming the path and the command to run).
    with pytest.raises(ConfigError, match="rotate --signing-key") as err:
        keyring_for(_service(qe_vault, "execution"), "execution")
    assert paths.SIGNING_PUBLIC in str(err.value)

    _as_operator(qe_vault, monkeypatch)  # the operator role is enough: no admin token
    assert qe_vault.cli("rotate", "--signing-key", "--key-id", "k-one") == 0
    out = capsys.readouterr().out
    risk = keyring_for(_service(qe_vault, "risk"), "risk")
    execution = keyring_for(_service(qe_vault, "execution"), "execution")
    try:
        assert risk.signing_key_id == "k-one" and execution.signing_key_id == ""
        first = risk.sign(_decision(1), topics.DECISIONS, "BTCUSDT")
        assert execution.verify(first, topics.DECISIONS, "BTCUSDT").ok
        seed = qe_vault.root.secrets.kv.v2.read_secret_version(
            paths.SIGNING_PRIVATE, mount_point=qe_vault.base.kv_mount, raise_on_deleted_version=True
        )["data"]["data"]["private_key"]
        assert seed not in out  # the CLI never prints the private key

        # Least privilege: execution, ingest, inference and the operator cannot read the private key back.
        for role in ("execution", "ingest", "inference", "operator"):
            with (
                connect(qe_vault.approle_settings(role), role) as store,
                pytest.raises(SecretUnavailable, match="permission denied"),
            ):
                store.read(paths.SIGNING_PRIVATE)

        # Rotate while both run: risk switches (watched), execution learns the new public key, the old stays valid.
        assert qe_vault.cli("rotate", "--signing-key", "--key-id", "k-two") == 0
        wait_for(lambda: risk.signing_key_id == "k-two", what="risk signing with the rotated key")
        second = risk.sign(_decision(2), topics.DECISIONS, "BTCUSDT")
        assert second.signature.key_id == "k-two"
        assert execution.verify(second, topics.DECISIONS, "BTCUSDT").ok
        assert execution.verify(first, topics.DECISIONS, "BTCUSDT").ok  # signed before: valid until retired

        # The key in use cannot be retired; the previous one can, and its records are refused from then on.
        assert qe_vault.cli("rotate", "--retire-signing-key", "k-two") == 2
        assert qe_vault.cli("rotate", "--retire-signing-key", "k-one") == 0
        # Each service follows Vault on its own watch: each refuses the retired key once it has seen it.
        for name, keyring in (("execution", execution), ("risk", risk)):
            wait_for(
                lambda k=keyring: k.verify(first, topics.DECISIONS, "BTCUSDT").code == signing.RETIRED_KEY,
                what=f"{name} refusing the retired key",
            )
        assert execution.verify(second, topics.DECISIONS, "BTCUSDT").ok
    finally:
        risk.close()
        execution.close()

"""A service reads its own Kafka credentials from a real Vault-API server with its own AppRole, and no
other service's (the policies written by `quantumedge secrets init`)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import hvac
import pytest

from quantumedge.secrets import errors, paths
from quantumedge.secrets.errors import SecretUnavailable
from quantumedge.secrets.store import connect
from quantumedge.settings import Settings
from quantumedge.shared.bus import kafka_security as ks
from tests.harness import VaultEndpoint
from tests.integration.secrets.seeding import SeededVault, seed_known_secrets

SERVICES = paths.SERVICE_ROLES


@pytest.fixture
def seeded(vault: VaultEndpoint) -> Iterator[tuple[SeededVault, dict[str, dict[str, str]]]]:
    seeded = seed_known_secrets(vault.addr, vault.token)
    root = hvac.Client(url=vault.addr, token=vault.token, timeout=10)
    stored = {}
    for identity in (*SERVICES, paths.KAFKA_ADMIN_IDENTITY):
        stored[identity] = {"username": f"quantumedge-{identity}", "password": secrets.token_urlsafe(24)}
        root.secrets.kv.v2.create_or_update_secret(
            paths.kafka_path(identity), stored[identity], mount_point=seeded.kv_mount
        )
    try:
        yield seeded, stored
    finally:
        seeded.cleanup()


def settings_as(seeded: SeededVault, role: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    # Execution on testnet logs in as execution-testnet: its Kafka identity comes with the base policy.
    env = {**seeded.service_env(role, "testnet"), "QE_KAFKA__SECURITY_PROTOCOL": "SASL_SSL", "QE_VENUE": "testnet"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("QE_VAULT_TOKEN", raising=False)
    return Settings()


@pytest.mark.parametrize("role", SERVICES)
def test_each_service_reads_its_own_kafka_identity_and_no_other(
    seeded: tuple[SeededVault, dict], role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault, stored = seeded
    settings = settings_as(vault, role, monkeypatch)
    credentials = ks.load_credentials(settings, role)
    assert credentials is not None
    assert (credentials.username, credentials.password) == (stored[role]["username"], stored[role]["password"])
    store = connect(settings.vault, role)
    try:
        for other in (*SERVICES, paths.KAFKA_ADMIN_IDENTITY):
            if other == role:
                continue
            with pytest.raises(SecretUnavailable) as denied:
                store.read(paths.kafka_path(other))
            assert denied.value.kind == errors.PERMISSION_DENIED, other
    finally:
        store.close()


def test_a_missing_identity_stops_with_the_path_and_the_command_to_store_it(
    seeded: tuple[SeededVault, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    vault, _ = seeded
    root = hvac.Client(url=vault.addr, token=vault._root.token, timeout=10)
    root.secrets.kv.v2.delete_metadata_and_all_versions(paths.kafka_path("risk"), mount_point=vault.kv_mount)
    with pytest.raises(ks.KafkaSecurityError) as missing:
        ks.load_credentials(settings_as(vault, "risk", monkeypatch), "risk")
    assert missing.value.code == ks.CREDENTIALS_UNAVAILABLE
    assert f"quantumedge secrets rotate {paths.kafka_path('risk')}" in str(missing.value)

"""Fixtures for the secrets tests: an isolated QuantumEdge setup on the shared real Vault-API server.

Each test gets its own KV v2 mount, AppRole / Kubernetes auth mounts and policy prefix (all unique), created
by the real `quantumedge secrets init`, and removed afterwards; so tests never see each other's secrets even
on a shared OpenBao/Vault server.
"""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import hvac
import pytest

from quantumedge.secrets import paths
from quantumedge.secrets.settings import VaultSettings
from quantumedge.secrets_cli import secrets_main
from tests.harness import VaultEndpoint


@dataclass
class QeVault:
    """One isolated QuantumEdge layout on the test Vault. `base` is VaultSettings without credentials."""

    addr: str
    root: hvac.Client = field(repr=False)
    base: VaultSettings
    operator_token: str = field(repr=False)
    kubernetes_mount: str = ""

    def cli(self, *args: str) -> int:
        return secrets_main(
            [
                *args,
                "--addr",
                self.addr,
                "--kv-mount",
                self.base.kv_mount,
                "--approle-mount",
                self.base.approle_mount,
                "--kubernetes-mount",
                self.base.kubernetes_mount,
                "--policy-prefix",
                self.base.policy_prefix,
            ]
        )

    def settings(self, **update: object) -> VaultSettings:
        return VaultSettings.model_validate(self.base.model_dump() | update)

    def token_settings(self, token: str, **update: object) -> VaultSettings:
        return self.settings(auth_method="token", token=token, **update)

    def approle_settings(self, role: str, **update: object) -> VaultSettings:
        """Credentials for `role` as the platform would give them: role_id + a fresh secret_id."""
        mount = self.base.approle_mount
        role_id = self.root.auth.approle.read_role_id(role, mount_point=mount)["data"]["role_id"]
        secret_id = self.root.auth.approle.generate_secret_id(role, mount_point=mount)["data"]["secret_id"]
        creds = {"auth_method": "approle", "role": role, "approle_role_id": role_id, "approle_secret_id": secret_id}
        return self.settings(**(creds | update))

    def write(self, path: str, values: dict[str, str]) -> int:
        resp = self.root.secrets.kv.v2.create_or_update_secret(path, values, mount_point=self.base.kv_mount)
        return int(resp["data"]["version"])

    def policies(self, role: str) -> list[str]:
        """The policy names init attaches to `role` (a venue role carries the base execution policy too)."""
        return [self.base.policy_name(name) for name in paths.policies_of(role)]

    def service_token(self, role: str, **create: object) -> str:
        """A token carrying only `role`'s policies (as a service would hold), made by the root token."""
        auth = self.root.auth.token.create(policies=self.policies(role), **create)["auth"]
        return auth["client_token"]


def exchange_keys() -> dict[str, str]:
    """Fresh fake exchange credentials (random, so no test file holds anything key-like)."""
    return {"api_key": secrets.token_hex(16), "api_secret": secrets.token_hex(32)}


@pytest.fixture
def root_client(vault: VaultEndpoint) -> hvac.Client:
    return hvac.Client(url=vault.addr, token=vault.token, timeout=10)


@pytest.fixture
def qe_vault(vault: VaultEndpoint, root_client: hvac.Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[QeVault]:
    tag = uuid.uuid4().hex[:10]
    base = VaultSettings(
        addr=vault.addr,
        kv_mount=f"qe-kv-{tag}",
        approle_mount=f"qe-approle-{tag}",
        kubernetes_mount=f"qe-k8s-{tag}",
        policy_prefix=f"qe-{tag}-",
        watch_interval_s=0.2,
    )
    operator_token = "op-" + secrets.token_urlsafe(24)
    for name in ("QE_VAULT_ADDR", "QE_VAULT_ROLE", "QE_CONFIG_FILE", "QE_EXCHANGE_API_KEY", "QE_EXCHANGE_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    # The CLI authenticates like an operator would: admin token and operator token in the environment.
    monkeypatch.setenv("QE_VAULT_TOKEN", vault.token)
    monkeypatch.setenv("QE_OPERATOR_TOKEN", operator_token)
    qe = QeVault(vault.addr, root_client, base, operator_token)
    # Both venue roles, so tests can show that each reads its own venue's key only.
    assert qe.cli("init", "--execution-venues", "testnet,live") == 0
    try:
        yield qe
    finally:
        with contextlib.suppress(Exception):
            root_client.sys.disable_secrets_engine(base.kv_mount)
        for mount in (base.approle_mount, base.kubernetes_mount):
            with contextlib.suppress(Exception):
                root_client.sys.disable_auth_method(mount)
        for role in paths.ALL_ROLES:
            with contextlib.suppress(Exception):
                root_client.sys.delete_policy(base.policy_name(role))

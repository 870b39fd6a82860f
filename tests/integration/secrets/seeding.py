"""Seed a real Vault with known secret values, for tests that then grep logs and files for them.

    from tests.integration.secrets.seeding import seed_known_secrets
    seeded = seed_known_secrets(vault.addr, vault.token)          # `vault` = the root conftest fixture
    env = {**os.environ, **seeded.service_env("execution"), "QE_VENUE": "testnet"}
    ... run the services with env, collect every log line and file written ...
    for value in seeded.values: assert value not in text
    seeded.cleanup()

Everything lives under unique mounts (KV, AppRole) and policy names, so it never collides with other tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import uuid
from dataclasses import dataclass, field

import hvac

from quantumedge.secrets import paths
from quantumedge.secrets_cli import secrets_main


@dataclass
class SeededVault:
    addr: str
    kv_mount: str
    approle_mount: str
    policy_prefix: str
    exchange: dict[str, str] = field(repr=False)
    operator_token: str = field(repr=False)
    _root: hvac.Client = field(repr=False)
    _issued: list[str] = field(default_factory=list, repr=False)

    @property
    def values(self) -> list[str]:
        """Every secret value a service could come across (exchange keys, operator token, AppRole secret-ids)."""
        return [*self.exchange.values(), self.operator_token, *self._issued]

    @property
    def operator_token_sha256(self) -> str:
        return hashlib.sha256(self.operator_token.encode()).hexdigest()

    def service_env(self, service: str, venue: str = "testnet") -> dict[str, str]:
        """QE_ environment for a service process logging in with AppRole (fresh secret-id) as its role for
        `venue` (execution on testnet: execution-testnet, the only role that reads the seeded key)."""
        role = paths.vault_role(service, venue)
        approle = self._root.auth.approle
        role_id = approle.read_role_id(role, mount_point=self.approle_mount)["data"]["role_id"]
        secret_id = approle.generate_secret_id(role, mount_point=self.approle_mount)["data"]["secret_id"]
        self._issued.append(secret_id)
        return {
            "QE_VAULT_ADDR": self.addr,
            "QE_VAULT__AUTH_METHOD": "approle",
            "QE_VAULT__KV_MOUNT": self.kv_mount,
            "QE_VAULT__APPROLE_MOUNT": self.approle_mount,
            "QE_VAULT__POLICY_PREFIX": self.policy_prefix,
            "QE_VAULT__APPROLE_ROLE_ID": role_id,
            "QE_VAULT__APPROLE_SECRET_ID": secret_id,
        }

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            self._root.sys.disable_secrets_engine(self.kv_mount)
        with contextlib.suppress(Exception):
            self._root.sys.disable_auth_method(self.approle_mount)
        for role in paths.ALL_ROLES:
            with contextlib.suppress(Exception):
                self._root.sys.delete_policy(f"{self.policy_prefix}{role}")


def seed_known_secrets(addr: str, root_token: str) -> SeededVault:
    """`quantumedge secrets init` + `rotate` on unique mounts, with random known values for the testnet key."""
    tag = uuid.uuid4().hex[:10]
    seeded = SeededVault(
        addr=addr,
        kv_mount=f"qe-kv-{tag}",
        approle_mount=f"qe-approle-{tag}",
        policy_prefix=f"qe-{tag}-",
        exchange={"api_key": "k" + secrets.token_hex(20), "api_secret": "s" + secrets.token_hex(32)},
        operator_token="op-" + secrets.token_urlsafe(24),
        _root=hvac.Client(url=addr, token=root_token, timeout=10),
    )
    common = [
        "--addr", addr, "--kv-mount", seeded.kv_mount, "--approle-mount", seeded.approle_mount,
        "--policy-prefix", seeded.policy_prefix,
    ]  # fmt: skip
    env = {
        "QE_VAULT_TOKEN": root_token,
        "QE_OPERATOR_TOKEN": seeded.operator_token,
        "QE_SEED_API_KEY": seeded.exchange["api_key"],
        "QE_SEED_API_SECRET": seeded.exchange["api_secret"],
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        if secrets_main(["init", *common]) != 0:
            raise RuntimeError("quantumedge secrets init failed (see stderr)")
        rotate = ["rotate", paths.EXCHANGE_TESTNET, "--from-env", "api_key=QE_SEED_API_KEY"]
        if secrets_main([*rotate, "--from-env", "api_secret=QE_SEED_API_SECRET", *common]) != 0:
            raise RuntimeError("quantumedge secrets rotate failed (see stderr)")
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return seeded

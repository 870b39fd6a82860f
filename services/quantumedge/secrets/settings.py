"""Settings of the Vault / OpenBao client (section `vault` of the configuration).

Environment: QE_VAULT_ADDR, QE_VAULT_TOKEN, QE_VAULT_ROLE (flat aliases) and QE_VAULT__<FIELD> for the rest,
e.g. QE_VAULT__AUTH_METHOD=kubernetes. Every field has a default; nothing here is read from a file in the repo.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, SecretStr, field_validator

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class VaultSettings(BaseModel):
    # Where Vault / OpenBao answers, e.g. http://127.0.0.1:8200 or https://vault.vault.svc:8200.
    addr: str = ""
    # token (local development) | approle (CI, operations) | kubernetes (in the cluster).
    auth_method: Literal["token", "approle", "kubernetes"] = "token"
    # Token for auth_method=token; from QE_VAULT_TOKEN only, never from a file in the repository.
    token: SecretStr = SecretStr("")
    # Role to log in as (AppRole / Kubernetes). Empty = the service's name (ingest, inference, risk, execution).
    role: str = ""
    namespace: str = ""  # Vault Enterprise / OpenBao namespace; empty = root
    # TLS towards Vault: a CA bundle path, or verify=False only for a local dev server.
    ca_cert: str = ""
    tls_verify: bool = True
    timeout_s: float = 5.0

    # KV version 2 mount and the prefix every QuantumEdge path lives under.
    kv_mount: str = "secret"
    # Mounts of the auth methods (init enables them there).
    approle_mount: str = "approle"
    kubernetes_mount: str = "kubernetes"
    # Policies are written as <policy_prefix><role> (quantumedge-execution, ...).
    policy_prefix: str = "quantumedge-"

    # AppRole credentials: from env (QE_VAULT__APPROLE_ROLE_ID / QE_VAULT__APPROLE_SECRET_ID) or from files
    # the platform mounts (re-read at every login, so a rotated secret-id file is picked up).
    approle_role_id: str = ""
    approle_role_id_file: str = ""
    approle_secret_id: SecretStr = SecretStr("")
    approle_secret_id_file: str = ""
    # Or a response-wrapped secret-id (what `quantumedge secrets init --issue-secret-ids` / `issue-secret-id`
    # hand out): a single-use wrapping token, unwrapped at login; the secret-id itself never touches env or disk.
    approle_secret_id_wrapped: SecretStr = SecretStr("")
    approle_secret_id_wrapped_file: str = ""

    # Kubernetes auth: the projected service-account token (re-read at every login; kubelet rotates it).
    kubernetes_jwt_file: str = "/var/run/secrets/kubernetes.io/serviceaccount/token"

    # Renew the token when this fraction of its TTL has passed; re-login when renewal fails.
    renew_fraction: float = 0.66
    # How often watched secrets are checked for a new version.
    watch_interval_s: float = 15.0

    # Operator authentication for changing gRPC calls. A sha256 hash is not a secret, so it may be configured
    # directly ("hex" or "name:hex,name2:hex") for local / embedded use; otherwise it is read from Vault.
    operator_token_sha256: str = ""
    operator_token_path: str = "quantumedge/operator/token-hashes"  # noqa: S105 - a KV path, not a token
    # Optional mutual TLS for the gRPC servers (paths mounted by the platform).
    grpc_tls_cert_file: str = ""
    grpc_tls_key_file: str = ""
    grpc_tls_client_ca_file: str = ""

    # Exchange credentials from QE_EXCHANGE_API_KEY / QE_EXCHANGE_API_SECRET instead of Vault.
    # Only honoured with execution.venue == "testnet"; refused for live.
    allow_env_credentials: bool = False

    @field_validator("operator_token_sha256")
    @classmethod
    def _valid_hashes(cls, value: str) -> str:
        value = value.strip().lower()
        for entry in filter(None, (e.strip() for e in value.split(","))):
            digest = entry.rsplit(":", 1)[-1]
            if not _SHA256_HEX.match(digest):
                raise ValueError("must be a sha256 hex digest (64 hex chars), or name:digest pairs joined by commas")
        return value

    @field_validator("renew_fraction")
    @classmethod
    def _valid_fraction(cls, value: float) -> float:
        if not 0.1 <= value <= 0.9:
            raise ValueError("must be between 0.1 and 0.9")
        return value

    def role_for(self, service: str) -> str:
        """The Vault role a service logs in as."""
        return self.role or service

    def policy_name(self, role: str) -> str:
        return f"{self.policy_prefix}{role}"

"""`quantumedge secrets check`: log in as one service role and try every path it must, may and must not read.

Apart from the CLI module because it is the one place that reads secrets as a service would (through a
SecretStore logged in with a single-use secret-id), and its results are what the command prints.
"""

from __future__ import annotations

from dataclasses import dataclass

import hvac

from quantumedge.secrets import errors, paths
from quantumedge.secrets.errors import SecretUnavailable
from quantumedge.secrets.masking import register_secret
from quantumedge.secrets.settings import VaultSettings
from quantumedge.secrets.store import SecretStore


@dataclass
class CheckResult:
    role: str
    path: str
    expect: str  # "read" | "optional" | "denied"
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'OK  ' if self.ok else 'FAIL'} {self.role:<17} {self.expect:<8} {self.path}: {self.detail}"


def check_role(client: hvac.Client, vs: VaultSettings, role: str, venue: str) -> list[CheckResult]:
    """Log in as Vault role `role` with a single-use AppRole secret-id and try what it must and must not read."""
    required = set(paths.required_paths(role, venue))
    hashes = [vs.operator_token_path] if paths.service_of(role) in paths.OPERATOR_HASH_READERS else []
    if hashes and not vs.operator_token_sha256:
        required.add(vs.operator_token_path)
    readable = [*paths.readable_paths(role), *hashes]
    mount = vs.approle_mount
    try:
        role_id = client.auth.approle.read_role_id(role, mount_point=mount)["data"]["role_id"]
        minted = client.adapter.post(f"/v1/auth/{mount}/role/{role}/secret-id", json={"num_uses": 1, "ttl": "300s"})
    except Exception as exc:
        reason = errors.classify(exc, vs.addr)[1]
        return [CheckResult(role, f"auth/{mount}/role/{role}", "login", False, f"cannot mint a secret-id: {reason}")]
    secret_id = minted["data"]["secret_id"]
    register_secret(secret_id)
    role_vs = VaultSettings.model_validate(
        vs.model_dump()
        | {"auth_method": "approle", "role": role, "approle_role_id": role_id, "approle_secret_id": secret_id}
    )
    store = SecretStore(role_vs, role)
    try:
        store.login()
    except SecretUnavailable as exc:
        return [CheckResult(role, store.login_path, "login", False, exc.reason)]
    results: list[CheckResult] = []
    try:
        for path in readable:
            expect = "read" if path in required else "optional"
            try:
                store.read(path)
                results.append(CheckResult(role, path, expect, True, "readable"))
            except SecretUnavailable as exc:
                ok = expect == "optional" and exc.kind == errors.NOT_FOUND
                detail = "allowed, not written yet" if ok else exc.reason
                results.append(CheckResult(role, path, expect, ok, detail))
        for path in paths.forbidden_paths(role):
            try:
                store.read(path)
                results.append(CheckResult(role, path, "denied", False, "LEAK: readable but must not be"))
            except SecretUnavailable as exc:
                ok = exc.kind == errors.PERMISSION_DENIED
                results.append(CheckResult(role, path, "denied", ok, "denied" if ok else exc.reason))
    finally:
        store.close()
    return results

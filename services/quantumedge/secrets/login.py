"""The login exchanges of SecretStore: a given token (looked up) or a role login (AppRole / Kubernetes JWT).

Kept apart from the store so the store reads as token lifecycle (renew, re-login, fail) and this file as
"what Vault answers to a login and what each refusal means". Every credential is registered for masking
before it is sent, and every failure becomes SecretUnavailable with the login path and a reason code.
"""

from __future__ import annotations

from dataclasses import dataclass

import hvac
import hvac.exceptions
import requests

from quantumedge.secrets import errors
from quantumedge.secrets.credentials import MissingCredential, UnwrapFailed, approle_secret_id, from_env_or_file
from quantumedge.secrets.errors import SecretUnavailable
from quantumedge.secrets.masking import register_secret
from quantumedge.secrets.settings import VaultSettings

# What talking to Vault can raise; anything else is a bug and propagates as itself.
VAULT_ERRORS = (hvac.exceptions.VaultError, requests.exceptions.RequestException)


@dataclass(frozen=True)
class TokenGrant:
    """What a login gave: the token's TTL now, whether it renews, and the TTL renewals ask for again."""

    ttl: float
    renewable: bool
    login_ttl: float


def refine_sealed(client: hvac.Client, addr: str, kind: str, reason: str) -> str:
    """A 503 is sealed, uninitialized or standby: ask Vault which, so the operator's line says it."""
    if kind != errors.SEALED:
        return reason
    try:
        status = client.sys.read_seal_status()
    except VAULT_ERRORS:
        return reason
    if not status.get("initialized", True):
        return f"vault at {addr} is not initialized (and sealed)"
    if status.get("sealed"):
        return f"vault at {addr} is sealed"
    return f"vault at {addr} is unavailable (HTTP 503: standby or maintenance)"


def login_with_token(client: hvac.Client, settings: VaultSettings, addr: str, login_path: str) -> TokenGrant:
    """auth_method=token: use QE_VAULT_TOKEN as is and learn its TTL from lookup-self."""
    token = settings.token.get_secret_value()
    if not token:
        raise SecretUnavailable(login_path, "auth_method=token but no token: set QE_VAULT_TOKEN", errors.NOT_CONFIGURED)
    register_secret(token)
    client.token = token
    try:
        data = client.auth.token.lookup_self()["data"]
    except VAULT_ERRORS as exc:
        kind, reason = errors.classify(exc, addr)
        if kind == errors.PERMISSION_DENIED:
            kind, reason = errors.TOKEN_INVALID, "vault token invalid, expired or revoked (QE_VAULT_TOKEN)"
        raise SecretUnavailable(login_path, refine_sealed(client, addr, kind, reason), kind) from None
    ttl = float(data.get("ttl") or 0)
    # Renew by the TTL the token was created with, not by what was left of it when we got it.
    return TokenGrant(ttl, bool(data.get("renewable")), float(data.get("creation_ttl") or ttl))


def login_with_role(
    client: hvac.Client, settings: VaultSettings, vault_role: str, addr: str, login_path: str
) -> TokenGrant:
    """auth_method=approle / kubernetes: log in for a fresh token (the store can do this again later)."""
    try:
        if settings.auth_method == "approle":
            role_id = from_env_or_file(settings.approle_role_id, settings.approle_role_id_file, "approle_role_id")
            secret_id = approle_secret_id(settings)
            register_secret(secret_id)
            resp = client.auth.approle.login(role_id=role_id, secret_id=secret_id, mount_point=settings.approle_mount)
        else:
            jwt = from_env_or_file("", settings.kubernetes_jwt_file, "kubernetes_jwt")
            register_secret(jwt)
            resp = client.auth.kubernetes.login(role=vault_role, jwt=jwt, mount_point=settings.kubernetes_mount)
    except MissingCredential as exc:
        raise SecretUnavailable(login_path, str(exc), errors.NOT_CONFIGURED) from None
    except UnwrapFailed as exc:
        raise SecretUnavailable(login_path, refine_sealed(client, addr, exc.kind, exc.reason), exc.kind) from None
    except VAULT_ERRORS as exc:
        kind, reason = errors.classify(exc, addr)
        if kind not in (errors.UNREACHABLE, errors.SEALED):
            kind = errors.LOGIN_FAILED
            reason = f"{settings.auth_method} login as role {vault_role!r} refused ({reason})"
        raise SecretUnavailable(login_path, refine_sealed(client, addr, kind, reason), kind) from None
    auth = resp["auth"]
    register_secret(auth["client_token"])
    ttl = float(auth.get("lease_duration") or 0)
    return TokenGrant(ttl, bool(auth.get("renewable")), ttl)

"""Login credentials of the SecretStore: from settings (env) or platform-mounted files, and AppRole secret-ids
delivered response-wrapped.

A wrapped secret-id is a single-use wrapping token (what `quantumedge secrets init --issue-secret-ids` and
`quantumedge secrets issue-secret-id` print). At login it is looked up first (it must wrap a secret-id of this
AppRole mount, not something else an attacker wrapped), then unwrapped with the wrapping token itself as the
Vault token; the secret-id stays in this process's memory, so the other stores of the same process (operator
hashes, Kafka credentials, ...) and re-logins reuse it instead of failing on a token that is already spent.
A wrapping token someone else unwrapped first is refused with a reason that says so: that is the point of
wrapping (tampering shows).
"""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import requests

from quantumedge.secrets import errors
from quantumedge.shared.logs import register_secret

_VAULT_ERRORS = (hvac.exceptions.VaultError, requests.exceptions.RequestException)
# sha256(wrapping token) -> secret-id, for this process only (never written anywhere).
_unwrapped: dict[str, str] = {}
_unwrap_lock = threading.Lock()


class MissingCredential(Exception):  # noqa: N818 - internal: becomes SecretUnavailable(NOT_CONFIGURED)
    pass


class UnwrapFailed(Exception):  # noqa: N818 - internal: becomes SecretUnavailable(kind, reason)
    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def from_env_or_file(value: str, file_path: str, name: str) -> str:
    """A credential from its setting (env) or, re-read every time, from a file the platform mounts."""
    if value:
        return value
    if file_path:
        try:
            text = Path(file_path).read_text().strip()
        except OSError as exc:
            raise MissingCredential(f"{name}: cannot read {file_path} ({exc.strerror})") from None
        if text:
            return text
        raise MissingCredential(f"{name}: {file_path} is empty")
    env = f"QE_VAULT__{name.upper()}"
    raise MissingCredential(f"{name} missing: set {env} or {env}_FILE")


def approle_secret_id(settings: Any) -> str:
    """The secret-id to log in with: plain (env / file) or unwrapped from a wrapping token (env / file)."""
    plain, plain_file = settings.approle_secret_id.get_secret_value(), settings.approle_secret_id_file
    wrapped, wrapped_file = (
        settings.approle_secret_id_wrapped.get_secret_value(),
        settings.approle_secret_id_wrapped_file,
    )
    if plain or plain_file or not (wrapped or wrapped_file):
        try:
            return from_env_or_file(plain, plain_file, "approle_secret_id")
        except MissingCredential as exc:
            if plain or plain_file:
                raise
            raise MissingCredential(
                f"{exc}, or a wrapped one in QE_VAULT__APPROLE_SECRET_ID_WRAPPED or ..._WRAPPED_FILE"
            ) from None
    token = from_env_or_file(wrapped, wrapped_file, "approle_secret_id_wrapped")
    return unwrap_secret_id(settings, token)


def unwrap_secret_id(settings: Any, wrapping_token: str) -> str:
    """The secret-id a wrapping token holds (validated: it must come from this mount's secret-id endpoint)."""
    register_secret(wrapping_token)
    key = hashlib.sha256(wrapping_token.encode()).hexdigest()
    with _unwrap_lock:
        if key in _unwrapped:
            return _unwrapped[key]
        client = hvac.Client(
            url=settings.addr.rstrip("/") or None,
            token=wrapping_token,
            verify=settings.ca_cert or settings.tls_verify,
            timeout=settings.timeout_s,
            namespace=settings.namespace or None,
        )
        _check_creation_path(client, settings, wrapping_token)
        try:
            data = client.sys.unwrap()["data"]
        except _VAULT_ERRORS as exc:
            raise _unwrap_error(exc, settings.addr) from None
        secret_id = str((data or {}).get("secret_id") or "")
        if not secret_id:
            raise UnwrapFailed(errors.LOGIN_FAILED, "the wrapping token held no secret_id")
        register_secret(secret_id)
        _unwrapped[key] = secret_id
        return secret_id


def _check_creation_path(client: hvac.Client, settings: Any, wrapping_token: str) -> None:
    try:
        info = client.adapter.post("/v1/sys/wrapping/lookup", json={"token": wrapping_token})["data"]
    except _VAULT_ERRORS as exc:
        raise _unwrap_error(exc, settings.addr) from None
    path = str(info.get("creation_path") or "")
    if not re.fullmatch(rf"auth/{re.escape(settings.approle_mount)}/role/[^/]+/secret-id", path):
        raise UnwrapFailed(
            errors.LOGIN_FAILED,
            f"the wrapping token was not made by auth/{settings.approle_mount}/role/<role>/secret-id "
            f"(creation path {path or 'unknown'}): refusing to use it",
        )


def _unwrap_error(exc: BaseException, addr: str) -> UnwrapFailed:
    kind, reason = errors.classify(exc, addr)
    if kind in (errors.UNREACHABLE, errors.SEALED):
        return UnwrapFailed(kind, reason)
    return UnwrapFailed(
        errors.LOGIN_FAILED,
        "wrapped secret-id could not be unwrapped: already unwrapped, expired or not a wrapping token "
        f"({reason}); if nobody here unwrapped it, someone else may have: issue a new one with "
        "`quantumedge secrets issue-secret-id` and revoke the old secret-ids",
    )

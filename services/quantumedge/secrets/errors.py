"""Exceptions of the secrets module. Messages name a path and a reason, never a value."""

from __future__ import annotations

import hvac.exceptions
import requests

from quantumedge.secrets.masking import mask

# The reason kinds and the two errors shared catches live in shared (which never imports secrets); the same
# classes, so an `except SecretUnavailable` anywhere catches what the store raises.
from quantumedge.shared.secret_reader import (
    EMBEDDED,
    ERROR,
    LOGIN_FAILED,
    NOT_CONFIGURED,
    NOT_FOUND,
    PERMISSION_DENIED,
    SEALED,
    TOKEN_INVALID,
    UNREACHABLE,
    SecretsError,
    SecretUnavailable,
)

__all__ = [
    "EMBEDDED",
    "ERROR",
    "LOGIN_FAILED",
    "NOT_CONFIGURED",
    "NOT_FOUND",
    "PERMISSION_DENIED",
    "SEALED",
    "TOKEN_INVALID",
    "UNREACHABLE",
    "EmbeddedSecretsError",
    "SecretUnavailable",
    "SecretsError",
    "SecretsRequiredError",
    "classify",
]


class SecretsRequiredError(SecretsError):
    """A service cannot start (testnet/live without its secrets). The message lists every path and reason."""

    def __init__(self, role: str, failures: list[SecretUnavailable], hint: str = "") -> None:
        self.role = role
        self.failures = failures
        lines = "; ".join(f"{f.path}: {f.reason}" for f in failures)
        super().__init__(f"{role} cannot start without its secrets: {lines}" + (f". {hint}" if hint else ""))


class EmbeddedSecretsError(SecretsError):
    """Embedded mode (`quantumedge up`) never reads secrets; something tried."""


def classify(exc: BaseException, addr: str) -> tuple[str, str]:
    """(kind, human reason) for an exception raised while talking to Vault. Never includes request data."""
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return UNREACHABLE, f"vault unreachable at {addr or '(QE_VAULT_ADDR not set)'} ({type(exc).__name__})"
    if isinstance(exc, hvac.exceptions.VaultDown | hvac.exceptions.VaultNotInitialized):
        return SEALED, f"vault at {addr} is sealed or not initialized (HTTP 503)"
    if isinstance(exc, hvac.exceptions.Forbidden):
        return PERMISSION_DENIED, f"permission denied ({_errors(exc)})"
    if isinstance(exc, hvac.exceptions.InvalidPath):
        return NOT_FOUND, "not found (no such secret, or its current version is deleted)"
    if isinstance(exc, hvac.exceptions.Unauthorized):
        return TOKEN_INVALID, f"vault token invalid or expired ({_errors(exc)})"
    if isinstance(exc, hvac.exceptions.VaultError):
        return ERROR, f"vault error {type(exc).__name__} ({_errors(exc)})"
    if isinstance(exc, requests.exceptions.RequestException):
        return UNREACHABLE, f"vault request to {addr} failed ({type(exc).__name__})"
    return ERROR, f"{type(exc).__name__}"


def _errors(exc: BaseException) -> str:
    errors = getattr(exc, "errors", None)
    if isinstance(errors, list | tuple) and errors:
        text = "; ".join(str(e) for e in errors)
    else:
        text = str(exc).split(", on ", 1)[0]
    return mask(text.strip()[:300]) or type(exc).__name__

"""Exceptions of the secrets module. Messages name a path and a reason, never a value."""

from __future__ import annotations

import hvac.exceptions
import requests

from quantumedge.secrets.masking import mask

# Reason kinds, so callers (and tests) can branch without parsing text.
UNREACHABLE = "unreachable"
SEALED = "sealed"
PERMISSION_DENIED = "permission denied"
TOKEN_INVALID = "token invalid"  # noqa: S105 - a reason kind, not a password
NOT_FOUND = "not found"
LOGIN_FAILED = "login failed"
NOT_CONFIGURED = "not configured"
EMBEDDED = "embedded mode"
ERROR = "error"


class SecretsError(RuntimeError):
    """Base class of the secrets module's errors."""


class SecretUnavailable(SecretsError):  # noqa: N818 - the name the services code against
    """A secret could not be read. `kind` is one of the reason kinds above; `reason` is human text."""

    def __init__(self, path: str, reason: str, kind: str = ERROR) -> None:
        self.path = path
        self.kind = kind
        # Vault's error texts carry no secret values, but mask anyway: this string ends up in logs.
        self.reason = mask(reason)
        super().__init__(f"secret {path!r} unavailable: {self.reason}")

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        return (type(self), (self.path, self.reason, self.kind))


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

"""What shared needs from a secret store, without importing one.

The keyring, the Kafka credentials and the operator token hashes are read from Vault, but shared sits below
the secrets package: the wiring hands shared a `SecretConnector` (the settings root's `Settings.secret_reader`
logs in with quantumedge.secrets.store.connect), and shared codes against these Protocols and errors. The
secrets package raises these very classes (quantumedge.secrets.errors re-exports them), so one `except`
catches what any store raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from quantumedge.shared.logs import mask

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


class SecretReader(Protocol):
    """A logged-in store (quantumedge.secrets.store.SecretStore). read raises SecretUnavailable."""

    def read(self, path: str) -> Mapping[str, str]: ...

    def watch(
        self,
        path: str,
        callback: Callable[[Mapping[str, str]], None],
        on_error: Callable[[SecretUnavailable], None] | None = None,
    ) -> Any: ...

    def close(self) -> None: ...


class SecretConnector(Protocol):
    """Logs in as a Vault role and returns its reader; raises SecretsError (SecretUnavailable when refused)."""

    def __call__(self, role: str) -> SecretReader: ...

"""What a service calls at start: `require_secrets(settings, role)`.

- paper venue, and every service other than execution: needs nothing, never contacts Vault;
- embedded mode (`quantumedge up`): reads no secrets at all; asking for one raises;
- testnet / live: reads its exchange key from Vault or refuses to start, naming each path and the reason;
- environment credentials (QE_EXCHANGE_API_KEY / QE_EXCHANGE_API_SECRET / QE_EXCHANGE_PRIVATE_KEY) only with
  `vault.allow_env_credentials=true` and venue=testnet; with venue=live their mere presence refuses start.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from quantumedge.secrets import errors, paths
from quantumedge.secrets.errors import EmbeddedSecretsError, SecretsError, SecretsRequiredError, SecretUnavailable
from quantumedge.secrets.masking import SecretData
from quantumedge.secrets.store import ErrorCallback, SecretStore, Watch, WatchCallback, connect
from quantumedge.shared.logs import get_logger
from quantumedge.shared.vault_layout import venue_of

log = get_logger(__name__)

# Secret key -> the env var it may come from (testnet only). Built from parts so no line looks like an assignment
# of a credential to a scanner.
ENV_CREDENTIALS = {key: f"QE_EXCHANGE_{key.upper()}" for key in paths.EXCHANGE_KEYS}


class SecretsConfigError(SecretsError):
    """A combination of settings that is never allowed (e.g. env credentials with venue=live)."""


@dataclass
class ServiceSecrets:
    """The secrets a service started with. `source` is none | vault | env."""

    role: str
    source: str
    values: dict[str, SecretData] = field(default_factory=dict)
    store: SecretStore | None = None

    def __getitem__(self, path: str) -> SecretData:
        try:
            return self.values[path]
        except KeyError:
            raise KeyError(f"{self.role} did not load secret {path!r}") from None

    def __contains__(self, path: object) -> bool:
        return path in self.values

    def watch(self, path: str, callback: WatchCallback, on_error: ErrorCallback | None = None) -> Watch | None:
        """Follow rotations of `path` (Vault only); the new SecretData also replaces values[path]."""
        if self.store is None:
            return None

        def _update(data: SecretData) -> None:
            self.values[path] = data
            callback(data)

        return self.store.watch(path, _update, on_error)

    def on_failure(self, callback: ErrorCallback) -> None:
        """Called once if Vault access is lost for good (stop trading and report)."""
        if self.store is not None:
            self.store.on_failure(callback)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def __repr__(self) -> str:
        return f"ServiceSecrets(role={self.role!r}, source={self.source!r}, paths={sorted(self.values)})"


def require_secrets(
    settings: Any,
    role: str,
    paths_needed: Sequence[str] | None = None,
    *,
    connect_fn: Callable[..., SecretStore] = connect,
) -> ServiceSecrets:
    """Load the secrets `role` cannot start without, or raise with every path and reason.

    `paths_needed` defaults to paths.required_paths(role, venue). Raises SecretsRequiredError (Vault could not
    provide them), EmbeddedSecretsError (embedded mode asked for one) or SecretsConfigError (forbidden setup).
    """
    vault = settings.vault
    venue = venue_of(settings, role)
    if venue == "live":
        present = [name for name in ENV_CREDENTIALS.values() if os.environ.get(name)]
        if vault.allow_env_credentials:
            raise SecretsConfigError(
                "vault.allow_env_credentials is only valid with execution.venue=testnet; "
                "live exchange keys come from Vault only"
            )
        if present:
            raise SecretsConfigError(
                f"refusing to start live trading with exchange credentials in the environment ({', '.join(present)}): "
                "unset them; live keys come from Vault only"
            )
    needed = list(paths_needed) if paths_needed is not None else paths.required_paths(role, venue)
    if not needed:
        return ServiceSecrets(role, "none")
    if not settings.behaviours.reads_vault:
        raise EmbeddedSecretsError(
            f"embedded mode (`quantumedge up`) reads no secrets, but {role} needs {', '.join(needed)} "
            f"(venue={venue}); use venue=paper there, or run `quantumedge serve {role}` with Vault configured"
        )
    if vault.allow_env_credentials and venue == "testnet" and set(needed) <= {paths.EXCHANGE_TESTNET}:
        return _from_environment(role, needed)

    hint = (
        f"store it with `quantumedge secrets rotate {needed[0]} --from-env api_key=VAR --from-env api_secret=VAR` "
        "and check access with `quantumedge secrets check`"
    )
    try:
        # Execution on testnet/live logs in as execution-<venue>: that role reads its venue's key only.
        store = connect_fn(vault, paths.vault_role(role, venue))
    except SecretUnavailable as exc:
        raise SecretsRequiredError(role, [SecretUnavailable(p, exc.reason, exc.kind) for p in needed], hint) from None
    values: dict[str, SecretData] = {}
    failures: list[SecretUnavailable] = []
    for path in needed:
        try:
            values[path] = store.read(path)
        except SecretUnavailable as exc:
            failures.append(exc)
    if failures:
        store.close()
        raise SecretsRequiredError(role, failures, hint)
    log.info("secrets loaded", extra={"role": role, "paths": needed, "versions": [v.version for v in values.values()]})
    return ServiceSecrets(role, "vault", values, store)


def _from_environment(role: str, needed: list[str]) -> ServiceSecrets:
    found = {key: os.environ[env] for key, env in ENV_CREDENTIALS.items() if os.environ.get(env)}
    if "api_key" not in found or not ({"api_secret", "private_key"} & set(found)):
        failure = SecretUnavailable(
            needed[0],
            "allow_env_credentials is set but QE_EXCHANGE_API_KEY and QE_EXCHANGE_API_SECRET "
            "(or QE_EXCHANGE_PRIVATE_KEY) are not both set",
            errors.NOT_CONFIGURED,
        )
        raise SecretsRequiredError(role, [failure])
    log.warning(
        "testnet exchange credentials taken from the environment (vault.allow_env_credentials); never for live",
        extra={"role": role},
    )
    return ServiceSecrets(role, "env", {path: SecretData(path, found, 0) for path in needed})

"""Where a process's signing keyring comes from (the adapter around quantumedge.shared.signing).

- the in-process bus (`quantumedge up`, unit tests): one key pair generated at start, in memory only, shared by
  every service of the process, so embedded runs sign and verify exactly as deployments do;
- signing.public_keys / signing.private_key (local runs and tests without Vault; the private key only with
  signing.allow_env_key=true);
- otherwise Vault: risk reads quantumedge/signing/private and .../public, execution only .../public. Both are
  watched: a rotated key is used without a restart. Risk switches to a new private key only once its id is
  in the public keyring (verifiers learn it from the same place; an unknown id makes them re-read at once).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from quantumedge.shared import vault_layout as paths
from quantumedge.shared.config import ConfigError
from quantumedge.shared.logs import get_logger, register_secret
from quantumedge.shared.secret_reader import SecretUnavailable
from quantumedge.shared.signing import Keyring, KeyringError, PublicKeyring, SigningKey, ephemeral_keyring

log = get_logger(__name__)
SIGNERS = ("risk",)  # the only role that holds a private key

_process_keyring: Keyring | None = None
_process_lock = threading.Lock()


def process_keyring() -> Keyring:
    """The in-memory key pair of this process (generated once)."""
    global _process_keyring
    with _process_lock:
        if _process_keyring is None:
            _process_keyring = ephemeral_keyring("in-process")
        return _process_keyring


def keyring_for(settings: Any, role: str, store: Any = None) -> Keyring:
    """The keyring `role` signs with (risk) and verifies with (risk, execution). Raises ConfigError naming the
    missing setting or Vault path: a service that cannot verify, or risk that cannot sign, does not start."""
    if settings.bus == "memory":
        return process_keyring()
    signing = settings.signing
    if signing.public_keys or signing.private_key.get_secret_value():
        return _from_settings(signing, role)
    if settings.vault.addr and settings.behaviours.signing_keys_from_vault:
        return _from_vault(settings, role, store)
    need = "its private key" if role in SIGNERS else "risk's public keys"
    raise ConfigError(
        f"{role} needs {need} to {'sign' if role in SIGNERS else 'verify'} decisions and control records: configure "
        "Vault (QE_VAULT_ADDR; keys written by `quantumedge secrets rotate --signing-key`), or for a local run "
        "QE_SIGNING__PUBLIC_KEYS and, for risk, QE_SIGNING__PRIVATE_KEY with QE_SIGNING__ALLOW_ENV_KEY=true "
        "(`quantumedge secrets signing-keygen` prints a pair)"
    )


def _from_settings(signing: Any, role: str) -> Keyring:
    try:
        public = PublicKeyring.from_spec(signing.public_keys, signing.retired_keys)
        private = signing.private_key.get_secret_value()
        key = None
        if role in SIGNERS:
            if not private:
                raise ConfigError("risk signs: set QE_SIGNING__PRIVATE_KEY (key_id:base64) or use Vault")
            if not signing.allow_env_key:
                raise ConfigError(
                    "signing.private_key is set but signing.allow_env_key is false: outside a local run the key "
                    "belongs in Vault; set QE_SIGNING__ALLOW_ENV_KEY=true to use it anyway"
                )
            key_id, _, seed = private.partition(":")
            register_secret(seed)
            key = SigningKey.from_seed_b64(key_id.strip(), seed)
            public = _with_own(public, key)
        if not public.key_ids:
            raise ConfigError(f"{role} verifies signatures: set QE_SIGNING__PUBLIC_KEYS (key_id:base64,...)")
    except KeyringError as exc:
        raise ConfigError(f"signing keys from settings: {exc}") from None
    _check_signing(key, public, "QE_SIGNING__RETIRED_KEYS")
    log.warning("signing keys from settings, not Vault: local use only", extra={"role": role, "keys": public.key_ids})
    return Keyring(public, key, source="settings")


def _with_own(public: PublicKeyring, key: SigningKey) -> PublicKeyring:
    """Risk verifies its own records with the public half of the key it holds (unless that id is retired)."""
    return public.with_key(key.key_id, key.public_raw(), active=key.key_id)


def _check_signing(key: SigningKey | None, public: PublicKeyring, where: str) -> None:
    if key is not None and public.status(key.key_id):
        raise ConfigError(
            f"risk's signing key {key.key_id!r} is {public.status(key.key_id)} in {where}: every record it signed "
            "would be refused; rotate with `quantumedge secrets rotate --signing-key`"
        )


def _from_vault(settings: Any, role: str, store: Any) -> Keyring:
    hint = "write the keyring with `quantumedge secrets rotate --signing-key`, check with `quantumedge secrets check`"
    try:
        store = store or settings.secret_reader(role)  # the settings root logs in
        public = _parse_public(store.read(paths.SIGNING_PUBLIC))
        key = _parse_private(store.read(paths.SIGNING_PRIVATE)) if role in SIGNERS else None
    except SecretUnavailable as exc:
        raise ConfigError(f"signing keyring for {role}: {exc.path}: {exc.reason}; {hint}") from None
    except KeyringError as exc:
        raise ConfigError(f"signing keyring for {role}: {exc}; {hint}") from None
    _check_signing(key, public, f"Vault {paths.SIGNING_PUBLIC}")
    follower = _VaultFollower(store, settings.signing.refresh_min_interval_s)
    keyring = Keyring(public, key, refresh=follower.refresh, source="vault")
    follower.follow(keyring, role in SIGNERS)
    keyring.on_close(store.close)
    log.info(
        "signing keyring from Vault", extra={"role": role, "keys": public.key_ids, "signs_with": keyring.signing_key_id}
    )
    return keyring


def _parse_public(data: Mapping[str, str]) -> PublicKeyring:
    public = PublicKeyring.from_secret(data)
    if not public.key_ids:
        raise KeyringError("public keyring holds no valid key")
    return public


def _parse_private(data: Mapping[str, str]) -> SigningKey:
    key_id, seed = str(data.get("key_id", "")), str(data.get("private_key", ""))
    if not key_id or not seed:
        raise KeyringError("private keyring needs key_id and private_key")
    register_secret(seed)
    return SigningKey.from_seed_b64(key_id, seed)


class _VaultFollower:
    """Watches both keyring paths and re-reads the public one on demand (rate-limited)."""

    def __init__(self, store: Any, min_interval_s: float) -> None:
        self.store = store
        self.min_interval_s = min_interval_s
        self._last_refresh = 0.0
        self._lock = threading.Lock()
        self._keyring: Keyring | None = None
        self._pending: SigningKey | None = None

    def follow(self, keyring: Keyring, signs: bool) -> None:
        self._keyring = keyring
        self.store.watch(paths.SIGNING_PUBLIC, self._public_changed, self._watch_error)
        if signs:
            self.store.watch(paths.SIGNING_PRIVATE, self._private_changed, self._watch_error)

    def refresh(self) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last_refresh < self.min_interval_s:
                return
            self._last_refresh = now
        try:
            self._public_changed(self.store.read(paths.SIGNING_PUBLIC))
        except SecretUnavailable as exc:
            self._watch_error(exc)

    def _public_changed(self, data: Mapping[str, str]) -> None:
        assert self._keyring is not None
        try:
            public = _parse_public(data)
        except KeyringError as exc:
            log.error("public signing keyring unusable; the previous one stays", extra={"error": str(exc)})
            return
        self._keyring.replace_public(public)
        log.info("public signing keyring updated", extra={"keys": public.key_ids, "retired": sorted(public.retired)})
        pending = self._pending
        if pending is not None and not public.status(pending.key_id):
            self._switch(pending)

    def _private_changed(self, data: Mapping[str, str]) -> None:
        assert self._keyring is not None
        try:
            key = _parse_private(data)
        except KeyringError as exc:
            log.error("private signing key unusable; the previous one stays", extra={"error": str(exc)})
            return
        if self._keyring.public.status(key.key_id):
            self._last_refresh = 0.0
            self.refresh()
        if self._keyring.public.status(key.key_id):
            # Verifiers would refuse it: keep signing with the current key until the public half is published.
            self._pending = key
            log.error(
                "new signing key not in the public keyring yet; still signing with the previous key",
                extra={"new": key.key_id, "current": self._keyring.signing_key_id},
            )
            return
        self._switch(key)

    def _switch(self, key: SigningKey) -> None:
        assert self._keyring is not None
        previous = self._keyring.signing_key_id
        self._keyring.replace_signing(key)
        self._pending = None
        log.warning("signing key rotated", extra={"previous": previous, "now": key.key_id})

    @staticmethod
    def _watch_error(exc: Exception) -> None:
        log.warning("signing keyring watch failed; the keys in use stay", extra={"error": str(exc)})

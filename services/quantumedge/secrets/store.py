"""SecretStore: KV v2 secrets from Vault / OpenBao over hvac, held in memory only.

One store per service process. `connect()` logs in (token, AppRole or Kubernetes service-account JWT) and
starts one background thread that
- renews the token before it expires (at `renew_fraction` of its TTL) and any renewable secret lease,
- logs in again when renewal is refused or the token reached its max TTL (AppRole / Kubernetes only),
- polls watched secrets' versions and calls back with the new version, so a rotated key needs no restart.

When the store can no longer get a valid token (token revoked with auth_method=token, or credentials
refused on re-login) it stops for good: `failure` is set, failure listeners and watchers' on_error are
called once, the thread exits, and every later read raises SecretUnavailable with the reason. It never
retries in a tight loop. Transient trouble (Vault unreachable or sealed) is retried with backoff.

The login exchanges are in secrets/login.py, lease renewal in secrets/leases.py and the watch list in
secrets/watches.py; this file is the token's lifecycle, reads and the background thread.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hvac
import hvac.exceptions

from quantumedge.secrets import errors
from quantumedge.secrets.errors import EmbeddedSecretsError, SecretUnavailable
from quantumedge.secrets.leases import LeaseBook
from quantumedge.secrets.login import VAULT_ERRORS as _VAULT_ERRORS
from quantumedge.secrets.login import TokenGrant, login_with_role, login_with_token, refine_sealed
from quantumedge.secrets.masking import SecretData
from quantumedge.secrets.settings import VaultSettings
from quantumedge.secrets.watches import ErrorCallback, Watch, WatchCallback, WatchList, call_safely
from quantumedge.shared.logs import get_logger

log = get_logger(__name__)

# Re-exported: secrets/require.py and callers import these from here.
__all__ = ["ErrorCallback", "SecretStore", "StoreStats", "Watch", "WatchCallback", "connect"]

_TRANSIENT = (errors.UNREACHABLE, errors.SEALED, errors.ERROR)
_MIN_WAIT_S = 0.2
_MAX_BACKOFF_S = 30.0


@dataclass
class StoreStats:
    """Counters for status lines and tests (no values)."""

    logins: int = 0
    renewals: int = 0
    relogins: int = 0
    lease_renewals: int = 0
    watch_updates: int = 0


class SecretStore:
    """Reads KV v2 secrets for one role. Use `connect()` to build one."""

    def __init__(self, settings: VaultSettings, role: str) -> None:
        self.settings = settings
        self.role = role
        self.vault_role = settings.role_for(role)
        self.addr = settings.addr.rstrip("/")
        self.mount = settings.kv_mount
        self.stats = StoreStats()
        self.failure: SecretUnavailable | None = None
        self._client = hvac.Client(
            url=self.addr or None,
            verify=settings.ca_cert or settings.tls_verify,
            timeout=settings.timeout_s,
            namespace=settings.namespace or None,
        )
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._login_ttl = 0.0  # the TTL a fresh token gets; renewals ask for it again
        self._expires_at: float | None = None
        self._next_renew: float | None = None
        self._renewable = False
        self._relogin_due = False
        self._backoff = 1.0
        self._leases = LeaseBook(settings.renew_fraction)
        self._watches = WatchList(settings.watch_interval_s)
        self._failure_listeners: list[ErrorCallback] = []

    # ---- identity -------------------------------------------------------------------------------------

    @property
    def auth_method(self) -> str:
        return self.settings.auth_method

    @property
    def can_relogin(self) -> bool:
        return self.auth_method in ("approle", "kubernetes")

    @property
    def login_path(self) -> str:
        if self.auth_method == "approle":
            return f"auth/{self.settings.approle_mount}/login"
        if self.auth_method == "kubernetes":
            return f"auth/{self.settings.kubernetes_mount}/login"
        return "auth/token/lookup-self"

    @property
    def client(self) -> hvac.Client:
        """The logged-in hvac client, for admin tooling (`quantumedge secrets`); services use read/watch."""
        return self._client

    @property
    def token_ttl_remaining(self) -> float | None:
        """Seconds until the current token expires (None: no expiry, e.g. a root token)."""
        return None if self._expires_at is None else max(0.0, self._expires_at - time.monotonic())

    def __repr__(self) -> str:
        return f"SecretStore(addr={self.addr!r}, role={self.vault_role!r}, auth={self.auth_method!r})"

    # ---- login ------------------------------------------------------------------------------------------

    def login(self) -> None:
        """Authenticate with the configured method. Raises SecretUnavailable (path = the login path)."""
        with self._lock:
            if not self.addr:
                raise SecretUnavailable(
                    self.login_path, "vault address not configured: set QE_VAULT_ADDR", errors.NOT_CONFIGURED
                )
            self._take_grant(self._exchange())
            self.stats.logins += 1
            self._backoff = 1.0
        log.info(
            "vault login",
            extra={"role": self.vault_role, "auth_method": self.auth_method, "ttl_s": self._login_ttl},
        )

    def _exchange(self) -> TokenGrant:
        if self.auth_method == "token":
            return login_with_token(self._client, self.settings, self.addr, self.login_path)
        return login_with_role(self._client, self.settings, self.vault_role, self.addr, self.login_path)

    def _take_grant(self, grant: TokenGrant) -> None:
        self._set_token_times(grant.ttl, grant.renewable, fresh=True)
        self._login_ttl = grant.login_ttl

    def _set_token_times(self, ttl: float, renewable: bool, *, fresh: bool = False) -> None:
        now = time.monotonic()
        if fresh:
            self._login_ttl = ttl
        self._renewable = renewable
        self._relogin_due = False
        if ttl <= 0:
            self._expires_at = self._next_renew = None
            return
        self._expires_at = now + ttl
        # Renewals ask for the login TTL again; getting less back means the max TTL caps it: log in again instead.
        if not fresh and self._login_ttl and ttl < self._login_ttl - 0.5:
            self._relogin_due = self.can_relogin
        self._next_renew = now + max(_MIN_WAIT_S, ttl * self.settings.renew_fraction)
        self._wake.set()

    # ---- renewal ---------------------------------------------------------------------------------------

    def renew(self) -> bool:
        """One renewal step (the background thread calls this when due; tests and operators may too).

        Returns True when the store holds a valid token afterwards. Fatal problems set `failure`.
        """
        with self._lock:
            if self.failure or self._closed:
                return False
            try:
                return self._renew_step()
            except SecretUnavailable as exc:
                return self._handle_auth_problem(exc.kind, exc.reason)

    def _renew_step(self) -> bool:
        if self._relogin_due or (not self._renewable and self._expires_at is not None):
            return self._relogin_or_wait()
        try:
            resp = self._client.auth.token.renew_self(increment=int(self._login_ttl) or None)
        except hvac.exceptions.InvalidRequest:
            # "not renewable" / "past max TTL": renewing cannot help; log in again, or ride it out (token).
            self._renewable = False
            return self._relogin_or_wait()
        except _VAULT_ERRORS as exc:
            kind, reason = errors.classify(exc, self.addr)
            if kind == errors.PERMISSION_DENIED:
                kind, reason = errors.TOKEN_INVALID, "vault refused token renewal: token revoked or expired"
            raise SecretUnavailable(self.login_path, reason, kind) from None
        auth = resp["auth"]
        self.stats.renewals += 1
        self._backoff = 1.0
        self._set_token_times(float(auth.get("lease_duration") or 0), bool(auth.get("renewable")))
        return True

    def _relogin_or_wait(self) -> bool:
        if self.can_relogin:
            self.login()
            self.stats.relogins += 1
            return True
        # auth_method=token, token not renewable (or capped): it is good until it expires, then it is over.
        if self._expires_at is not None and time.monotonic() >= self._expires_at - _MIN_WAIT_S:
            self._fail(errors.TOKEN_INVALID, "vault token expired and auth_method=token cannot log in again")
            return False
        self._next_renew = self._expires_at
        return True

    def _handle_auth_problem(self, kind: str, reason: str) -> bool:
        if kind in _TRANSIENT:
            self._retry_later(reason)
            return False
        if kind == errors.TOKEN_INVALID and self.can_relogin:
            try:
                self.login()
                self.stats.relogins += 1
                return True
            except SecretUnavailable as exc:
                if exc.kind in _TRANSIENT:
                    self._retry_later(exc.reason)
                    return False
                kind, reason = exc.kind, exc.reason
        if kind == errors.TOKEN_INVALID and not self.can_relogin:
            reason += "; auth_method=token cannot log in again: restart with a valid QE_VAULT_TOKEN"
        self._fail(kind, reason)
        return False

    def _retry_later(self, reason: str) -> None:
        delay = self._backoff
        self._backoff = min(_MAX_BACKOFF_S, self._backoff * 2)
        self._next_renew = time.monotonic() + delay
        log.warning("vault renewal deferred", extra={"role": self.vault_role, "reason": reason, "retry_s": delay})

    def _fail(self, kind: str, reason: str) -> None:
        """Stop for good: no token can be had without an operator. Notify once; the thread exits."""
        if self.failure:
            return
        self.failure = SecretUnavailable(self.login_path, reason, kind)
        self._client.token = None
        self._stop.set()
        self._wake.set()
        log.error(
            "vault access lost; secrets unavailable until restart",
            extra={"role": self.vault_role, "kind": kind, "reason": self.failure.reason},
        )
        for listener in list(self._failure_listeners):
            call_safely(listener, self.failure)
        self._watches.notify_failure(kind, reason)

    def on_failure(self, callback: ErrorCallback) -> None:
        """Called once when the store stops for good (e.g. execution stops trading and reports)."""
        self._failure_listeners.append(callback)

    # ---- reads -----------------------------------------------------------------------------------------

    def read(self, path: str) -> SecretData:
        """The current version of a secret. Raises SecretUnavailable(path, reason)."""
        return self._retrying(path, self._read)

    def _retrying(self, path: str, fn: Callable[[str], Any]) -> Any:
        try:
            return fn(path)
        except SecretUnavailable as exc:
            if exc.kind != errors.TOKEN_INVALID or self.failure:
                raise
            # The token died behind our back (revoked, expired): log in again and retry once (AppRole /
            # Kubernetes), or stop for good (token auth) - either way handled once, here.
            with self._lock:
                self._handle_auth_problem(exc.kind, exc.reason)
            if self.failure:
                raise SecretUnavailable(path, self.failure.reason, self.failure.kind) from None
            return fn(path)

    def _read(self, path: str) -> SecretData:
        self._check_usable(path)
        with self._lock:
            try:
                resp = self._client.secrets.kv.v2.read_secret_version(
                    path=path, mount_point=self.mount, raise_on_deleted_version=True
                )
            except _VAULT_ERRORS as exc:
                raise self._explain(path, exc) from None
            self._track_lease(resp)
        data = resp.get("data") or {}
        return SecretData(path, data.get("data") or {}, int((data.get("metadata") or {}).get("version") or 0))

    def version(self, path: str) -> int:
        """The secret's current version number (reads metadata only, never the values)."""
        return int(self._retrying(path, self._version))

    def _version(self, path: str) -> int:
        self._check_usable(path)
        with self._lock:
            try:
                resp = self._client.secrets.kv.v2.read_secret_metadata(path=path, mount_point=self.mount)
            except _VAULT_ERRORS as exc:
                raise self._explain(path, exc) from None
        return int(resp["data"].get("current_version") or 0)

    def _check_usable(self, path: str) -> None:
        if self.failure:
            raise SecretUnavailable(path, self.failure.reason, self.failure.kind)
        if self._closed:
            raise SecretUnavailable(path, "secret store closed", errors.ERROR)

    def _explain(self, path: str, exc: BaseException) -> SecretUnavailable:
        kind, reason = errors.classify(exc, self.addr)
        if kind == errors.PERMISSION_DENIED:
            # Vault answers 403 both for "policy says no" and for a dead token: ask which.
            try:
                self._client.auth.token.lookup_self()
                reason = (
                    f"permission denied: role {self.vault_role!r} (policy "
                    f"{self.settings.policy_name(self.vault_role)!r}) may not read {self.mount}/data/{path}"
                )
            except _VAULT_ERRORS as probe:
                if errors.classify(probe, self.addr)[0] == errors.PERMISSION_DENIED:
                    kind, reason = errors.TOKEN_INVALID, "vault token invalid, expired or revoked"
        return SecretUnavailable(path, self._refine(kind, reason), kind)

    def _refine(self, kind: str, reason: str) -> str:
        return refine_sealed(self._client, self.addr, kind, reason)

    def _track_lease(self, resp: dict[str, Any]) -> None:
        if self._leases.track(resp):
            self._wake.set()

    def _renew_leases(self) -> None:
        self._leases.renew_due(self._client, self._lock, self.stats, self.addr)

    # ---- watches ---------------------------------------------------------------------------------------

    def watch(
        self, path: str, callback: WatchCallback, on_error: ErrorCallback | None = None, *, initial: bool = False
    ) -> Watch:
        """Call `callback(new SecretData)` whenever the secret's version changes (polled every
        `watch_interval_s`). `initial=True` also calls it now. A path that does not exist yet is watched
        from version 0. `on_error` is called once per new kind of failure, not on every poll."""
        try:
            current = self.version(path)
        except SecretUnavailable as exc:
            if exc.kind != errors.NOT_FOUND:
                raise
            current = 0
        w = Watch(path, callback, on_error, current, self)
        with self._lock:
            self._watches.add(w)
        self._wake.set()
        if initial and current:
            callback(self.read(path))
        return w

    def _remove_watch(self, w: Watch) -> None:
        with self._lock:
            self._watches.remove(w)

    def check_watches(self) -> int:
        """Poll every watch once now; returns how many callbacks ran (the thread calls this periodically)."""
        return self._watches.poll(self, self.stats)

    # ---- background thread -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the renewal / watch thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"qe-vault-{self.role}", daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._seconds_to_next())
            self._wake.clear()
            if self._stop.is_set():
                break
            now = time.monotonic()
            try:
                if self._next_renew is not None and now >= self._next_renew:
                    self.renew()
                if self.failure:
                    break
                if self._leases:
                    self._renew_leases()
                if self._watches and now >= self._watches.next_poll:
                    self._watches.next_poll = now + self.settings.watch_interval_s
                    self.check_watches()
            except Exception:  # never let the thread die silently on a surprise
                log.exception("vault background step failed", extra={"role": self.vault_role})
                self._stop.wait(self._backoff)

    def _seconds_to_next(self) -> float:
        now = time.monotonic()
        due = [now + 3600.0]
        if self._next_renew is not None:
            due.append(self._next_renew)
        if self._watches:
            due.append(self._watches.next_poll)
        due += self._leases.due_times()
        return max(0.0, min(due) - now)

    def close(self) -> None:
        """Stop the thread; revoke the token this store logged in for (never a token it was given)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.can_relogin and self._client.token and not self.failure:
                with contextlib.suppress(Exception):
                    self._client.auth.token.revoke_self()
            self._client.token = None
            self._watches.clear()

    def __enter__(self) -> SecretStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(vault_settings: Any, role: str, *, reads_vault: bool = True, start: bool = True) -> SecretStore:
    """Log in to Vault as `role` and return a started SecretStore.

    `vault_settings` is a VaultSettings or the whole Settings (then its behaviours.reads_vault is honoured).
    A run that reads no Vault (reads_vault=False: embedded mode) never talks to it: this raises
    EmbeddedSecretsError instead.
    Raises SecretUnavailable when login fails (reason: unreachable / sealed / not configured / refused).
    """
    if hasattr(vault_settings, "vault"):
        reads_vault = reads_vault and vault_settings.behaviours.reads_vault
        vault_settings = vault_settings.vault
    if not reads_vault:
        raise EmbeddedSecretsError(
            f"embedded mode (`quantumedge up`) reads no secrets, but {role} tried to connect to Vault; "
            "use venue=paper there, or run `quantumedge serve` with Vault configured"
        )
    store = SecretStore(vault_settings, role)
    store.login()
    if start:
        store.start()
    return store

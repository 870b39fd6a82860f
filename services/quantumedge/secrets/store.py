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
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hvac
import hvac.exceptions
import requests

from quantumedge.secrets import errors
from quantumedge.secrets.credentials import MissingCredential, UnwrapFailed, approle_secret_id, from_env_or_file
from quantumedge.secrets.errors import EmbeddedSecretsError, SecretUnavailable
from quantumedge.secrets.masking import SecretData, register_secret
from quantumedge.secrets.settings import VaultSettings
from quantumedge.shared.logs import get_logger

log = get_logger(__name__)

# What talking to Vault can raise; anything else is a bug and propagates as itself.
_VAULT_ERRORS = (hvac.exceptions.VaultError, requests.exceptions.RequestException)
_TRANSIENT = (errors.UNREACHABLE, errors.SEALED, errors.ERROR)
_MIN_WAIT_S = 0.2
_MAX_BACKOFF_S = 30.0

WatchCallback = Callable[[SecretData], None]
ErrorCallback = Callable[[SecretUnavailable], None]


@dataclass
class StoreStats:
    """Counters for status lines and tests (no values)."""

    logins: int = 0
    renewals: int = 0
    relogins: int = 0
    lease_renewals: int = 0
    watch_updates: int = 0


@dataclass(eq=False)
class Watch:
    """A registered watch; `cancel()` stops it."""

    path: str
    callback: WatchCallback
    on_error: ErrorCallback | None
    version: int
    _store: SecretStore = field(repr=False)
    _last_error_kind: str = ""

    def cancel(self) -> None:
        self._store._remove_watch(self)


@dataclass
class _Lease:
    duration: float
    renew_at: float


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
        self._leases: dict[str, _Lease] = {}
        self._watches: list[Watch] = []
        self._next_watch_poll = 0.0
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
            if self.auth_method == "token":
                self._login_token()
            else:
                self._login_role()
            self.stats.logins += 1
            self._backoff = 1.0
        log.info(
            "vault login",
            extra={"role": self.vault_role, "auth_method": self.auth_method, "ttl_s": self._login_ttl},
        )

    def _login_token(self) -> None:
        token = self.settings.token.get_secret_value()
        if not token:
            raise SecretUnavailable(
                self.login_path, "auth_method=token but no token: set QE_VAULT_TOKEN", errors.NOT_CONFIGURED
            )
        register_secret(token)
        self._client.token = token
        try:
            data = self._client.auth.token.lookup_self()["data"]
        except _VAULT_ERRORS as exc:
            kind, reason = errors.classify(exc, self.addr)
            if kind == errors.PERMISSION_DENIED:
                kind, reason = errors.TOKEN_INVALID, "vault token invalid, expired or revoked (QE_VAULT_TOKEN)"
            raise SecretUnavailable(self.login_path, self._refine(kind, reason), kind) from None
        self._set_token_times(float(data.get("ttl") or 0), bool(data.get("renewable")), fresh=True)
        # Renew by the TTL the token was created with, not by what was left of it when we got it.
        self._login_ttl = float(data.get("creation_ttl") or self._login_ttl)

    def _login_role(self) -> None:
        try:
            if self.auth_method == "approle":
                role_id = from_env_or_file(
                    self.settings.approle_role_id, self.settings.approle_role_id_file, "approle_role_id"
                )
                secret_id = approle_secret_id(self.settings)
                register_secret(secret_id)
                resp = self._client.auth.approle.login(
                    role_id=role_id, secret_id=secret_id, mount_point=self.settings.approle_mount
                )
            else:
                jwt = from_env_or_file("", self.settings.kubernetes_jwt_file, "kubernetes_jwt")
                register_secret(jwt)
                resp = self._client.auth.kubernetes.login(
                    role=self.vault_role, jwt=jwt, mount_point=self.settings.kubernetes_mount
                )
        except MissingCredential as exc:
            raise SecretUnavailable(self.login_path, str(exc), errors.NOT_CONFIGURED) from None
        except UnwrapFailed as exc:
            raise SecretUnavailable(self.login_path, self._refine(exc.kind, exc.reason), exc.kind) from None
        except _VAULT_ERRORS as exc:
            kind, reason = errors.classify(exc, self.addr)
            if kind not in (errors.UNREACHABLE, errors.SEALED):
                kind = errors.LOGIN_FAILED
                reason = f"{self.auth_method} login as role {self.vault_role!r} refused ({reason})"
            raise SecretUnavailable(self.login_path, self._refine(kind, reason), kind) from None
        auth = resp["auth"]
        register_secret(auth["client_token"])
        self._set_token_times(float(auth.get("lease_duration") or 0), bool(auth.get("renewable")), fresh=True)

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
            _call_safely(listener, self.failure)
        for watch in list(self._watches):
            if watch.on_error and watch._last_error_kind != kind:
                watch._last_error_kind = kind
                _call_safely(watch.on_error, SecretUnavailable(watch.path, reason, kind))

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
        if kind != errors.SEALED:
            return reason
        try:
            status = self._client.sys.read_seal_status()
        except _VAULT_ERRORS:
            return reason
        if not status.get("initialized", True):
            return f"vault at {self.addr} is not initialized (and sealed)"
        if status.get("sealed"):
            return f"vault at {self.addr} is sealed"
        return f"vault at {self.addr} is unavailable (HTTP 503: standby or maintenance)"

    def _track_lease(self, resp: dict[str, Any]) -> None:
        lease_id, duration = resp.get("lease_id"), float(resp.get("lease_duration") or 0)
        if lease_id and resp.get("renewable") and duration > 0:
            self._leases[lease_id] = _Lease(duration, time.monotonic() + duration * self.settings.renew_fraction)
            self._wake.set()

    def _renew_leases(self) -> None:
        now = time.monotonic()
        for lease_id, lease in list(self._leases.items()):
            if now < lease.renew_at:
                continue
            try:
                with self._lock:
                    resp = self._client.sys.renew_lease(lease_id=lease_id, increment=int(lease.duration))
                self.stats.lease_renewals += 1
                new = float(resp.get("lease_duration") or 0)
                if new <= 0 or not resp.get("renewable", True):
                    del self._leases[lease_id]
                else:
                    lease.renew_at = now + new * self.settings.renew_fraction
            except _VAULT_ERRORS as exc:
                log.warning(
                    "lease renewal failed; the secret is re-read on next use",
                    extra={"reason": errors.classify(exc, self.addr)[1]},
                )
                del self._leases[lease_id]

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
            self._watches.append(w)
            if not self._next_watch_poll:
                self._next_watch_poll = time.monotonic() + self.settings.watch_interval_s
        self._wake.set()
        if initial and current:
            callback(self.read(path))
        return w

    def _remove_watch(self, w: Watch) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._watches.remove(w)

    def check_watches(self) -> int:
        """Poll every watch once now; returns how many callbacks ran (the thread calls this periodically)."""
        updated = 0
        for w in list(self._watches):
            if self.failure:
                break
            try:
                current = self.version(w.path)
                if current == w.version:
                    w._last_error_kind = ""
                    continue
                data = self.read(w.path)
            except SecretUnavailable as exc:
                if w.on_error and exc.kind != w._last_error_kind:
                    _call_safely(w.on_error, exc)
                w._last_error_kind = exc.kind
                continue
            w.version = data.version
            w._last_error_kind = ""
            self.stats.watch_updates += 1
            updated += 1
            log.info("secret rotated", extra={"path": w.path, "version": data.version})
            _call_safely(w.callback, data)
        return updated

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
                if self._watches and now >= self._next_watch_poll:
                    self._next_watch_poll = now + self.settings.watch_interval_s
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
            due.append(self._next_watch_poll)
        due += [lease.renew_at for lease in self._leases.values()]
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


def _call_safely(fn: Callable[[Any], None], arg: Any) -> None:
    try:
        fn(arg)
    except Exception:
        log.exception("secret callback failed", extra={"callback": getattr(fn, "__qualname__", repr(fn))})


def connect(vault_settings: Any, role: str, *, embedded: bool = False, start: bool = True) -> SecretStore:
    """Log in to Vault as `role` and return a started SecretStore.

    `vault_settings` is a VaultSettings or the whole Settings (then its `embedded` flag is honoured).
    Embedded mode never talks to Vault: this raises EmbeddedSecretsError instead.
    Raises SecretUnavailable when login fails (reason: unreachable / sealed / not configured / refused).
    """
    if hasattr(vault_settings, "vault"):
        embedded = embedded or bool(getattr(vault_settings, "embedded", False))
        vault_settings = vault_settings.vault
    if embedded:
        raise EmbeddedSecretsError(
            f"embedded mode (`quantumedge up`) reads no secrets, but {role} tried to connect to Vault; "
            "use venue=paper there, or run `quantumedge serve` with Vault configured"
        )
    store = SecretStore(vault_settings, role)
    store.login()
    if start:
        store.start()
    return store

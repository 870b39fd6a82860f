"""One active executor per account: a fenced, time-bounded lease taken before trading.

The lock is a record in a store with compare-and-set on a version (Vault/OpenBao KV v2 `cas` here; a
Kubernetes Lease's resourceVersion in lease_k8s.py). Rules, the same as Kubernetes leader election:
- the holder renews every `renew_s`; its lease is valid until the moment its last successful write
  *started* plus `duration_s` less `margin_s` (its own monotonic clock). Past that it sends nothing, even
  if the store is out of reach: it cannot know that another has not taken over;
- a candidate takes over only when the record it sees has not changed for `duration_s` measured from
  when *it first saw* that version (its own clock), so the old holder stopped `margin_s` earlier, whatever
  the two clocks read; a released record (no holder) is taken at once;
- every write is a compare-and-set on the version read, so two candidates never both win, and the
  version (with the transition count) is the fencing token in the logs and reports.
The elector is pure (store and clock injected); the service runs its `step()` on a thread.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from quantumedge.shared.logs import get_logger

log = get_logger(__name__)

# Reason codes an operator reads in the logs and in execution's status.
LEASE_ACQUIRED = "LEASE_ACQUIRED"
LEASE_LOST = "LEASE_LOST"
LEASE_PASSIVE = "LEASE_PASSIVE"


@dataclass(frozen=True)
class LeaseRecord:
    holder: str
    transitions: int
    duration_s: float
    version: int  # the store's compare-and-set version: the fencing token


class LeaseConflictError(Exception):
    """The record changed since it was read: another candidate wrote first."""


class LeaseStore(Protocol):
    def read(self) -> LeaseRecord | None: ...

    def write(self, holder: str, transitions: int, duration_s: float, expected_version: int) -> LeaseRecord:
        """Compare-and-set: raises LeaseConflictError when the version is no longer `expected_version`."""


@dataclass
class LeaseConfig:
    duration_s: float = 15.0
    renew_s: float = 3.0
    margin_s: float = 3.0

    def __post_init__(self) -> None:
        if not 0 < self.renew_s < self.duration_s - self.margin_s or self.margin_s <= 0:
            raise ValueError("lease: need 0 < renew_s < duration_s - margin_s and margin_s > 0")


class ExecutorLease:
    def __init__(
        self,
        store: LeaseStore,
        holder: str,
        config: LeaseConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.holder = holder
        self.config = config or LeaseConfig()
        self._clock = clock
        self._valid_until = 0.0
        self._seen: tuple[int, float] | None = None  # (version, when first seen) of another's record
        self.token = 0
        self.transitions = 0  # the record's holder changes when this process won: an operator's fencing token
        self.lost = False
        self._told_passive = False

    @property
    def active(self) -> bool:
        """True while this process may send: it holds the lease and its validity has not run out."""
        return not self.lost and self._clock() < self._valid_until

    def step(self) -> bool:
        """Renew, or try to take over; returns `active`. Once held and lost, it stays lost (the process
        stops and comes back as a candidate)."""
        if self.lost:
            return False
        started = self._clock()
        held = self._valid_until > 0
        try:
            record = self.store.read()
            if record is not None and record.holder and record.holder != self.holder and not self._expired(record):
                return self._passive(record, held)
            transitions = 0 if record is None else record.transitions + (0 if record.holder == self.holder else 1)
            won = self.store.write(self.holder, transitions, self.config.duration_s, record.version if record else 0)
        except LeaseConflictError:
            return self._passive(None, held)
        except Exception as exc:  # the store is out of reach: keep what validity is left, never more
            log.warning("executor lease store unreachable", extra={"error": repr(exc), "active": self.active})
            return self._check_expiry(held)
        self._valid_until = started + self.config.duration_s - self.config.margin_s
        if not held:
            log.warning(
                "executor lease acquired: this process trades",
                extra={"reason_code": LEASE_ACQUIRED, "holder": self.holder, "transitions": won.transitions},
            )
        self.token = won.version
        self.transitions = won.transitions
        self._seen = None
        return True

    def release(self) -> None:
        """A clean stop hands the lease over at once (a record with no holder)."""
        if not self.active:
            return
        self._valid_until = 0.0
        try:
            record = self.store.read()
            if record is not None and record.holder == self.holder:
                self.store.write("", record.transitions, self.config.duration_s, record.version)
        except Exception as exc:
            log.warning("executor lease not released; it expires instead", extra={"error": repr(exc)})

    def _expired(self, record: LeaseRecord) -> bool:
        now = self._clock()
        if self._seen is None or self._seen[0] != record.version:
            self._seen = (record.version, now)
            return False
        return now - self._seen[1] >= record.duration_s

    def _passive(self, record: LeaseRecord | None, held: bool) -> bool:
        if held:
            self._lose("another executor holds the lease")
            return False
        if record is not None and not self._told_passive:
            self._told_passive = True
            log.info(
                "executor lease held by another: passive",
                extra={"reason_code": LEASE_PASSIVE, "holder": record.holder, "transitions": record.transitions},
            )
        return False

    def _check_expiry(self, held: bool) -> bool:
        if held and not self.active:
            self._lose("lease could not be renewed before it ran out")
        return self.active

    def _lose(self, why: str) -> None:
        self.lost = True
        self._valid_until = 0.0
        log.error("executor lease lost: sending stopped", extra={"reason_code": LEASE_LOST, "why": why})


class VaultLeaseStore:
    """The lease as a KV v2 secret: `cas` makes every write a compare-and-set on the secret's version."""

    def __init__(self, client: Any, path: str, mount: str = "secret") -> None:
        self.client = client
        self.path = path
        self.mount = mount

    def read(self) -> LeaseRecord | None:
        import hvac.exceptions

        kv = self.client.secrets.kv.v2
        try:
            resp = kv.read_secret_version(path=self.path, mount_point=self.mount, raise_on_deleted_version=True)
        except hvac.exceptions.InvalidPath:
            return None
        data = json.loads(resp["data"]["data"]["lease"])
        version = int(resp["data"]["metadata"]["version"])
        return LeaseRecord(str(data["holder"]), int(data["transitions"]), float(data["duration_s"]), version)

    def write(self, holder: str, transitions: int, duration_s: float, expected_version: int) -> LeaseRecord:
        import hvac.exceptions

        body = {"lease": json.dumps({"holder": holder, "transitions": transitions, "duration_s": duration_s})}
        try:
            resp = self.client.secrets.kv.v2.create_or_update_secret(
                path=self.path, secret=body, cas=expected_version, mount_point=self.mount
            )
        except hvac.exceptions.InvalidRequest as exc:
            if "check-and-set" in str(exc):
                raise LeaseConflictError(str(exc)) from exc
            raise
        return LeaseRecord(holder, transitions, duration_s, int(resp["data"]["version"]))

"""Renewable secret leases a SecretStore read (dynamic secrets): when each is due and renewing it.

A lease that cannot be renewed is dropped rather than retried: the secret is read again on next use.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import hvac

from quantumedge.secrets import errors
from quantumedge.secrets.login import VAULT_ERRORS
from quantumedge.shared.logs import get_logger

log = get_logger(__name__)


class _Counts(Protocol):
    lease_renewals: int


@dataclass
class Lease:
    duration: float
    renew_at: float


class LeaseBook:
    """The leases in flight, keyed by lease id, each renewed at `renew_fraction` of its duration."""

    def __init__(self, renew_fraction: float) -> None:
        self.renew_fraction = renew_fraction
        self._leases: dict[str, Lease] = {}

    def __len__(self) -> int:
        return len(self._leases)

    def due_times(self) -> list[float]:
        return [lease.renew_at for lease in self._leases.values()]

    def track(self, resp: dict[str, Any]) -> bool:
        """Remember the lease of a read response; True when there was a renewable one."""
        lease_id, duration = resp.get("lease_id"), float(resp.get("lease_duration") or 0)
        if lease_id and resp.get("renewable") and duration > 0:
            self._leases[lease_id] = Lease(duration, time.monotonic() + duration * self.renew_fraction)
            return True
        return False

    def renew_due(self, client: hvac.Client, lock: threading.RLock, stats: _Counts, addr: str) -> None:
        now = time.monotonic()
        for lease_id, lease in list(self._leases.items()):
            if now < lease.renew_at:
                continue
            try:
                with lock:
                    resp = client.sys.renew_lease(lease_id=lease_id, increment=int(lease.duration))
                stats.lease_renewals += 1
                new = float(resp.get("lease_duration") or 0)
                if new <= 0 or not resp.get("renewable", True):
                    del self._leases[lease_id]
                else:
                    lease.renew_at = now + new * self.renew_fraction
            except VAULT_ERRORS as exc:
                log.warning(
                    "lease renewal failed; the secret is re-read on next use",
                    extra={"reason": errors.classify(exc, addr)[1]},
                )
                del self._leases[lease_id]

"""The executor lease on a real Vault-API server (OpenBao dev): KV v2 check-and-set decides, one holder at
a time, and a holder that cannot renew stops before a candidate can take over (clocks injected, so the
test asserts the order of events, not wall-clock time)."""

from __future__ import annotations

import uuid

import hvac
import pytest

from quantumedge.execution.lease import ExecutorLease, LeaseConfig, LeaseConflictError, VaultLeaseStore

pytestmark = [pytest.mark.integration]


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Unreachable:
    """A store a network partition cut off: every call fails."""

    def read(self):
        raise ConnectionError("partitioned")

    def write(self, *a, **kw):
        raise ConnectionError("partitioned")


def _store(vault, path: str) -> VaultLeaseStore:
    return VaultLeaseStore(hvac.Client(url=vault.addr, token=vault.token), path)


def test_one_holder_takeover_only_after_the_holder_stopped_and_release_hands_over(vault) -> None:
    path = f"quantumedge/leases/test-{uuid.uuid4().hex[:8]}"
    config = LeaseConfig(duration_s=15, renew_s=3, margin_s=3)
    ca, cb = Clock(), Clock()
    a = ExecutorLease(_store(vault, path), "exec-a", config, ca)
    b = ExecutorLease(_store(vault, path), "exec-b", config, cb)
    assert a.step() and a.active
    assert not b.step() and not b.active  # passive while a renews
    for _ in range(10):
        ca.t += 3
        cb.t += 3
        assert a.step() and not b.step()
    # a is cut off from the store: it keeps what validity it has, then stops sending.
    a.store = Unreachable()
    stopped_at = None
    took_over_at = None
    for _ in range(20):
        ca.t += 1
        cb.t += 1
        a.step()
        if not a.active and stopped_at is None:
            stopped_at = ca.t
        if b.step() and took_over_at is None:
            took_over_at = cb.t
        assert not (a.active and b.active)
    assert stopped_at is not None and took_over_at is not None and stopped_at < took_over_at
    assert a.lost and b.token > a.token
    # b stops cleanly: the lease is handed over at once, no waiting out its duration.
    b.release()
    c = ExecutorLease(_store(vault, path), "exec-c", config, Clock())
    assert c.step()


def test_two_candidates_writing_the_same_version_never_both_win(vault) -> None:
    path = f"quantumedge/leases/test-{uuid.uuid4().hex[:8]}"
    store = _store(vault, path)
    first = store.write("exec-a", 0, 15, 0)
    with pytest.raises(LeaseConflictError):
        store.write("exec-b", 0, 15, 0)
    assert store.read().holder == "exec-a" and store.read().version == first.version

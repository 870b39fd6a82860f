"""The executor lease in the running service: wait for it before trading, renew it on a thread, and fence
every venue call and every state write on it, so a process whose lease ran out sends and writes nothing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

from quantumedge.execution.lease import LEASE_LOST, ExecutorLease, LeaseConfig, VaultLeaseStore
from quantumedge.shared.logs import get_logger

log = get_logger(__name__)


class LeaseLostError(RuntimeError):
    """Raised instead of a venue call or state write once the lease is not held: nothing leaves."""

    reason_code = LEASE_LOST


def vault_lease(settings: Any) -> tuple[ExecutorLease, Any]:
    """The lease of `settings.execution.lease_path` on Vault, and the logged-in store to close on stop."""
    from quantumedge.secrets import paths
    from quantumedge.secrets.store import connect

    cfg = settings.execution
    store = connect(settings, paths.vault_role("execution", cfg.venue))
    lease = ExecutorLease(
        VaultLeaseStore(store.client, cfg.lease_path, settings.vault.kv_mount), _holder(), _config(cfg)
    )
    return lease, store


def kubernetes_lease(settings: Any) -> tuple[ExecutorLease, Any]:
    """The lease on Lease `lease_namespace/lease_name`, and the API client's store to close on stop."""
    from quantumedge.execution.lease_k8s import connect

    cfg = settings.execution
    store = connect(cfg.lease_namespace, cfg.lease_name, cfg.lease_kubeconfig)
    return ExecutorLease(store, _holder(), _config(cfg)), store


def take(settings: Any) -> tuple[ExecutorLease, Any]:
    """The lease of the backend `execution.lease` names (vault or kubernetes)."""
    return kubernetes_lease(settings) if settings.execution.lease == "kubernetes" else vault_lease(settings)


def _holder() -> str:
    return f"execution-{uuid.uuid4().hex[:12]}"


def _config(cfg: Any) -> LeaseConfig:
    return LeaseConfig(cfg.lease_duration_s, cfg.lease_renew_s, cfg.lease_margin_s)


def wait_for_lease(lease: ExecutorLease, stop: threading.Event) -> bool:
    """Block (passive) until this process holds the lease, or `stop` is set. True when held."""
    while not stop.is_set():
        if lease.step():
            return True
        stop.wait(lease.config.renew_s)
    return False


def keep_lease(lease: ExecutorLease, stop: threading.Event, on_lost: Callable[[], None]) -> threading.Thread:
    """Renew every renew_s; once the lease is lost, `on_lost` runs (the service stops and exits)."""

    def run() -> None:
        while not stop.wait(lease.config.renew_s):
            lease.step()
            if not lease.active:
                on_lost()
                return

    thread = threading.Thread(target=run, name="execution-lease", daemon=True)
    thread.start()
    return thread


def check(lease: ExecutorLease | None) -> None:
    if lease is not None and not lease.active:
        raise LeaseLostError("executor lease not held: nothing is sent or written")


class FencedEmitter:
    """An Emitter whose every report, state write and flush needs the lease."""

    def __init__(self, inner: Any, lease: Callable[[], ExecutorLease | None]) -> None:
        self.inner = inner
        self.lease = lease

    def report(self, symbol: str, report: Any) -> None:
        check(self.lease())
        self.inner.report(symbol, report)

    def state(self, key: str, record: Any) -> None:
        check(self.lease())
        self.inner.state(key, record)

    def flush(self) -> None:
        check(self.lease())
        self.inner.flush()


class FencedVenue:
    """The venue, with every call that changes an order fenced on the lease (reads pass)."""

    _FENCED = frozenset({"submit", "submit_oco", "cancel"})

    def __init__(self, inner: Any, lease: Callable[[], ExecutorLease | None]) -> None:
        self._inner = inner
        self._lease = lease

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in self._FENCED:
            return attr

        def fenced(*args: Any, **kwargs: Any) -> Any:
            check(self._lease())
            return attr(*args, **kwargs)

        return fenced

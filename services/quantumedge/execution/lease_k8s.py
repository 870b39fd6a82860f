"""The executor lease as a `coordination.k8s.io/v1` Lease: the same record client-go's leader election uses.

Mapping: holderIdentity = holder ("" when released), leaseDurationSeconds = duration (whole seconds, rounded
up so a candidate never waits less than the holder's validity), leaseTransitions = transitions (+1 on each
change of holder: the fencing token an operator reads), resourceVersion = the compare-and-set version (every
write is a replace carrying the resourceVersion read, so the API server answers 409 Conflict to a stale
writer). renewTime/acquireTime are written for `kubectl get lease` readers only: the elector never trusts a
wall clock, it times a record's age on its own monotonic clock (lease.py).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

from quantumedge.execution.lease import LeaseConflictError, LeaseRecord
from quantumedge.shared.errors import OperatorError

IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


class LeaseApiError(OperatorError):
    """The Lease API is missing, out of reach or forbidden: execution does not start."""

    reason = "lease_unavailable"


def record_of(lease: Any) -> LeaseRecord:
    """A Lease (lightkube's model or its dict form) as the elector's record; the version is the numeric
    resourceVersion."""
    raw = lease if isinstance(lease, dict) else lease.to_dict()
    meta, spec = raw.get("metadata") or {}, raw.get("spec") or {}
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        transitions=int(spec.get("leaseTransitions") or 0),
        duration_s=float(spec.get("leaseDurationSeconds") or 0),
        version=version_of(str(meta.get("resourceVersion") or "0")),
    )


def version_of(resource_version: str) -> int:
    """kube-apiserver's resourceVersion is etcd's revision, a decimal; anything else is refused, not guessed."""
    if not resource_version.isdigit():
        raise LeaseConflictError(f"unexpected Lease resourceVersion {resource_version!r}")
    return int(resource_version)


def lease_body(
    name: str, holder: str, transitions: int, duration_s: float, resource_version: str | None, acquired: Any, now: Any
) -> dict[str, Any]:
    """The Lease to create (resource_version None) or replace (the version read: the compare-and-set)."""
    meta: dict[str, Any] = {"name": name}
    if resource_version is not None:
        meta["resourceVersion"] = resource_version
    spec: dict[str, Any] = {
        "holderIdentity": holder or None,
        "leaseDurationSeconds": max(1, math.ceil(duration_s)),
        "leaseTransitions": transitions,
        "renewTime": now,
        "acquireTime": acquired,
    }
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}


def _micro_now() -> str:
    # MicroTime (RFC 3339, microseconds, UTC): informational for other readers, see the module docstring.
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class KubernetesLeaseStore:
    """LeaseStore on one Lease. `client` is a lightkube.Client."""

    def __init__(self, client: Any, namespace: str, name: str, server: str = "") -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.server = server
        self._read: tuple[int, str, str, Any] | None = None  # (version, resourceVersion, holder, acquireTime)

    def read(self) -> LeaseRecord | None:
        from lightkube import ApiError
        from lightkube.resources.coordination_v1 import Lease

        try:
            raw = self.client.get(Lease, self.name, namespace=self.namespace).to_dict()
        except ApiError as exc:
            if _code(exc) == 404:
                self._read = None
                return None
            raise
        record = record_of(raw)
        acquired = (raw.get("spec") or {}).get("acquireTime")
        self._read = (record.version, raw["metadata"]["resourceVersion"], record.holder, acquired)
        return record

    def write(self, holder: str, transitions: int, duration_s: float, expected_version: int) -> LeaseRecord:
        from lightkube import ApiError
        from lightkube.resources.coordination_v1 import Lease

        now = _micro_now()
        try:
            if expected_version == 0:
                body = lease_body(self.name, holder, transitions, duration_s, None, now if holder else None, now)
                lease = self.client.create(Lease.from_dict(body), namespace=self.namespace)
            else:
                if self._read is None or self._read[0] != expected_version:
                    raise LeaseConflictError(f"Lease version {expected_version} is not the one last read")
                _, rv, was, acquired = self._read
                acquired = acquired if holder == was else (now if holder else None)
                body = lease_body(self.name, holder, transitions, duration_s, rv, acquired, now)
                lease = self.client.replace(Lease.from_dict(body), namespace=self.namespace)
        except ApiError as exc:
            # 409: AlreadyExists (created by another first) or Conflict (stale resourceVersion); 404: deleted
            # since it was read. Either way another writer moved first.
            if _code(exc) in (404, 409):
                raise LeaseConflictError(f"Lease {self.namespace}/{self.name}: {_status(exc)}") from exc
            raise
        self._read = None
        return record_of(lease)

    def close(self) -> None:
        self.client.close()


def _code(exc: Any) -> int:
    return exc.response.status_code  # the HTTP status: set even when the body is no Status object


def _status(exc: Any) -> str:
    return f"{_code(exc)} {exc.status.reason}"


def connect(namespace: str, name: str, kubeconfig: str = "") -> KubernetesLeaseStore:
    """The store for Lease `namespace/name`: in-cluster (service account) unless `kubeconfig` is set. Checks
    once that the Lease can be read, so a missing or forbidden API stops execution with one line."""
    import yaml
    from lightkube import Client, ConfigError, KubeConfig

    where = f"Lease {namespace}/{name}"
    try:
        if kubeconfig:
            config = KubeConfig.from_file(kubeconfig).get()
        else:  # the projected token is re-read on a 401, so the kubelet's rotation needs no restart
            config = KubeConfig.from_service_account(IN_CLUSTER_TOKEN.parent).get()
        # trust_env=False: the API server is reached directly, never through an HTTP(S)_PROXY from the env.
        client = Client(config, namespace=namespace, trust_env=False, lazy=False)
    except (ConfigError, OSError, KeyError, ValueError, AssertionError, yaml.YAMLError) as exc:
        # KeyError: KUBERNETES_SERVICE_HOST/PORT unset (not in a pod); AssertionError: a kubeconfig user-less.
        source = f"kubeconfig {kubeconfig}" if kubeconfig else f"in-cluster service account ({IN_CLUSTER_TOKEN})"
        raise LeaseApiError(
            f"no Kubernetes API credentials for the executor lease: {source} unusable; run in a pod with a "
            "service account or set QE_EXECUTION__LEASE_KUBECONFIG",
            setting="QE_EXECUTION__LEASE_KUBECONFIG",
        ) from exc
    store = KubernetesLeaseStore(client, namespace, name, server=config.cluster.server)
    _preflight(store, where)
    return store


def _preflight(store: KubernetesLeaseStore, where: str) -> None:
    from lightkube import ApiError

    try:
        store.read()
    except ApiError as exc:
        store.close()
        if _code(exc) in (401, 403):
            raise LeaseApiError(
                f"execution's service account is refused {where} ({_status(exc)}): grant leases "
                "get/create/update (the chart's execution Role), or point QE_EXECUTION__LEASE_NAMESPACE/"
                "LEASE_NAME elsewhere",
                setting="QE_EXECUTION__LEASE_NAMESPACE",
                reason="lease_forbidden",
            ) from exc
        raise LeaseApiError(
            f"the Kubernetes API refused {where} ({_status(exc)}); check QE_EXECUTION__LEASE_NAMESPACE",
            setting="QE_EXECUTION__LEASE_NAMESPACE",
        ) from exc
    except Exception as exc:  # httpx2 transport errors: the API server is out of reach
        store.close()
        raise LeaseApiError(
            f"Kubernetes API at {store.server} unreachable for the executor lease ({type(exc).__name__}); "
            "check QE_EXECUTION__LEASE_KUBECONFIG or the pod's network",
            setting="QE_EXECUTION__LEASE_KUBECONFIG",
        ) from exc

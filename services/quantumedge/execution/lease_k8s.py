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
    """A V1Lease (or its dict form) as the elector's record; the version is the numeric resourceVersion."""
    meta, spec = _part(lease, "metadata"), _part(lease, "spec")
    rv = str(_field(meta, "resource_version", "resourceVersion") or "0")
    return LeaseRecord(
        holder=str(_field(spec, "holder_identity", "holderIdentity") or ""),
        transitions=int(_field(spec, "lease_transitions", "leaseTransitions") or 0),
        duration_s=float(_field(spec, "lease_duration_seconds", "leaseDurationSeconds") or 0),
        version=version_of(rv),
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


def _part(obj: Any, name: str) -> Any:
    return obj.get(name) or {} if isinstance(obj, dict) else getattr(obj, name, None)


def _field(obj: Any, attr: str, key: str) -> Any:
    if obj is None:
        return None
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, attr, None)


def _micro_now() -> str:
    # MicroTime (RFC 3339, microseconds, UTC): informational for other readers, see the module docstring.
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class KubernetesLeaseStore:
    """LeaseStore on one Lease. `api` is a kubernetes.client.CoordinationV1Api."""

    def __init__(self, api: Any, namespace: str, name: str) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self._read: tuple[int, str, str, Any] | None = None  # (version, resourceVersion, holder, acquireTime)

    def read(self) -> LeaseRecord | None:
        from kubernetes.client.exceptions import ApiException

        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                self._read = None
                return None
            raise
        record = record_of(lease)
        spec = lease.spec
        self._read = (record.version, lease.metadata.resource_version, record.holder, spec and spec.acquire_time)
        return record

    def write(self, holder: str, transitions: int, duration_s: float, expected_version: int) -> LeaseRecord:
        from kubernetes.client.exceptions import ApiException

        now = _micro_now()
        try:
            if expected_version == 0:
                body = lease_body(self.name, holder, transitions, duration_s, None, now if holder else None, now)
                lease = self.api.create_namespaced_lease(self.namespace, body)
            else:
                if self._read is None or self._read[0] != expected_version:
                    raise LeaseConflictError(f"Lease version {expected_version} is not the one last read")
                _, rv, was, acquired = self._read
                acquired = acquired if holder == was else (now if holder else None)
                body = lease_body(self.name, holder, transitions, duration_s, rv, acquired, now)
                lease = self.api.replace_namespaced_lease(self.name, self.namespace, body)
        except ApiException as exc:
            # 409: AlreadyExists (created by another first) or Conflict (stale resourceVersion); 404: deleted
            # since it was read. Either way another writer moved first.
            if exc.status in (404, 409):
                raise LeaseConflictError(f"Lease {self.namespace}/{self.name}: {exc.status} {exc.reason}") from exc
            raise
        self._read = None
        return record_of(lease)

    def close(self) -> None:
        self.api.api_client.close()


def connect(namespace: str, name: str, kubeconfig: str = "") -> KubernetesLeaseStore:
    """The store for Lease `namespace/name`: in-cluster (service account) unless `kubeconfig` is set. Checks
    once that the Lease can be read, so a missing or forbidden API stops execution with one line."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    where = f"Lease {namespace}/{name}"
    try:
        if kubeconfig:
            api_client = config.new_client_from_config(config_file=kubeconfig)
        else:
            cfg = client.Configuration()
            config.load_incluster_config(client_configuration=cfg)
            api_client = client.ApiClient(cfg)
    except (ConfigException, OSError) as exc:
        source = f"kubeconfig {kubeconfig}" if kubeconfig else f"in-cluster service account ({IN_CLUSTER_TOKEN})"
        raise LeaseApiError(
            f"no Kubernetes API credentials for the executor lease: {source} unusable; run in a pod with a "
            "service account or set QE_EXECUTION__LEASE_KUBECONFIG",
            setting="QE_EXECUTION__LEASE_KUBECONFIG",
        ) from exc
    store = KubernetesLeaseStore(client.CoordinationV1Api(api_client), namespace, name)
    _preflight(store, where)
    return store


def _preflight(store: KubernetesLeaseStore, where: str) -> None:
    from kubernetes.client.exceptions import ApiException

    try:
        store.read()
    except ApiException as exc:
        store.close()
        if exc.status in (401, 403):
            raise LeaseApiError(
                f"execution's service account is refused {where} ({exc.status} {exc.reason}): grant leases "
                "get/create/update (the chart's execution Role), or point QE_EXECUTION__LEASE_NAMESPACE/"
                "LEASE_NAME elsewhere",
                setting="QE_EXECUTION__LEASE_NAMESPACE",
                reason="lease_forbidden",
            ) from exc
        raise LeaseApiError(
            f"the Kubernetes API refused {where} ({exc.status} {exc.reason}); check QE_EXECUTION__LEASE_NAMESPACE",
            setting="QE_EXECUTION__LEASE_NAMESPACE",
        ) from exc
    except Exception as exc:  # urllib3 connection errors: the API server is out of reach
        store.close()
        host = store.api.api_client.configuration.host
        raise LeaseApiError(
            f"Kubernetes API at {host} unreachable for the executor lease ({type(exc).__name__}); "
            "check QE_EXECUTION__LEASE_KUBECONFIG or the pod's network",
            setting="QE_EXECUTION__LEASE_KUBECONFIG",
        ) from exc

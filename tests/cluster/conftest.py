"""`make cluster-test`: a real control plane on 127.0.0.1 (tools/cluster), the chart's helm lifecycle on it.

Not part of `make test`: the control plane is built from source once (20-40 minutes cold on 2 cores, then
cached in .cache/cluster/bin). Every step is timed and the table is printed at the end of the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.chart.chartlib import CHART, CI_VALUES
from tests.cluster.crds import all_crds
from tools import chart_tools
from tools.cluster.control_plane import ControlPlane
from tools.cluster.tools import ensure_kubectl

STEPS: list[tuple[str, float, str]] = []
NS = "quantumedge"
# The executor lease tests: the chart's Role grants release `qe`'s execution account this Lease only.
LEASE_NS = "qe-lease"
LEASE = "qe-quantumedge-execution"
ACCOUNT = "qe-quantumedge-execution"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}


@pytest.fixture(scope="session")
def helm() -> Path:
    return chart_tools.ensure_helm()


@pytest.fixture(scope="session")
def cluster() -> Iterator[ControlPlane]:
    ensure_kubectl()
    started = time.monotonic()
    with ControlPlane() as cp:
        STEPS.append(
            (
                "control plane up (etcd, apiserver, controller manager, scheduler, kwok node Ready)",
                time.monotonic() - started,
                "ok",
            )
        )
        yield cp


@contextlib.contextmanager
def timed_step(name: str) -> Iterator[None]:
    """with timed_step("helm install"): ...  -- timed, printed, and listed in the summary table."""
    started = time.monotonic()
    outcome = "FAILED"
    try:
        yield
        outcome = "ok"
    finally:
        elapsed = time.monotonic() - started
        STEPS.append((name, elapsed, outcome))
        print(f"\n  [{elapsed:6.1f} s] {name}: {outcome}", flush=True)


@pytest.fixture
def step():
    return timed_step


def namespace(cluster: ControlPlane, name: str, labels: dict[str, str] | None = None) -> None:
    doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(doc))
    # The namespace's default ServiceAccount comes from the controller manager a moment later.
    deadline = time.monotonic() + 60
    while cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode != 0:
        assert time.monotonic() < deadline, f"no default ServiceAccount in {name}"
        time.sleep(0.3)


@pytest.fixture(scope="session")
def prepared(cluster: ControlPlane) -> ControlPlane:
    """The cluster with the release namespace (PodSecurity restricted), the CRDs and what the full values use."""
    with timed_step("namespaces (release namespace labelled PodSecurity restricted) and the chart's CRDs"):
        namespace(cluster, NS, RESTRICTED)
        namespace(cluster, "kafka", RESTRICTED)  # full values put the Strimzi KafkaTopics there
        crds = {"apiVersion": "v1", "kind": "List", "items": all_crds()}
        cluster.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(crds))
        for crd in [c["metadata"]["name"] for c in crds["items"]]:
            cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
        # What the full values reference and a real cluster would already have.
        cluster.kubectl("apply", "-n", NS, "-f", "-", stdin=json.dumps(_full_values_prerequisites()))
    return cluster


def _full_values_prerequisites() -> dict:
    full = yaml.safe_load((CI_VALUES / "full-values.yaml").read_text())
    claim = full["config"]["modelsVolume"]["persistentVolumeClaim"]["claimName"]
    ca = full["vault"]["caCert"]["configMap"]
    items = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": ca}, "data": {"ca.crt": "(public CA)"}},
        # A claim bound to a volume up front: the scheduler places pods that mount it; no kubelet mounts it.
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"{NS}-{claim}"},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadOnlyMany"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "claimRef": {"namespace": NS, "name": claim},
                "csi": {"driver": "models.example.com", "volumeHandle": claim},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim},
            "spec": {
                "accessModes": ["ReadOnlyMany"],
                "storageClassName": "",
                "volumeName": f"{NS}-{claim}",
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    ]
    return {"apiVersion": "v1", "kind": "List", "items": items}


@pytest.fixture(scope="session")
def execution_kubeconfig(cluster: ControlPlane, helm: Path, tmp_path_factory) -> Iterator[Path]:
    """A kubeconfig for execution's service account (a TokenRequest token), with only what the chart grants
    it. Mode 0600 from its creation, and deleted after: it holds a bearer token."""
    namespace(cluster, LEASE_NS)
    only = ["-s", "templates/rbac.yaml", "-s", "templates/serviceaccount.yaml"]
    rendered = cluster.run([str(helm), "template", "qe", str(CHART), "-n", LEASE_NS, *only]).stdout
    items = [doc for doc in yaml.safe_load_all(rendered) if doc]
    assert {i["kind"] for i in items} == {"Role", "RoleBinding", "ServiceAccount"}
    lists = {"apiVersion": "v1", "kind": "List", "items": items}
    cluster.kubectl("apply", "-n", LEASE_NS, "-f", "-", stdin=json.dumps(lists))
    token = cluster.kubectl("create", "token", ACCOUNT, "-n", LEASE_NS, "--duration=1h").stdout.strip()
    config = json.loads(cluster.kubeconfig.read_text())
    config["users"] = [{"name": "qe-admin", "user": {"token": token}}]
    path = tmp_path_factory.mktemp("lease") / "kubeconfig"
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(json.dumps(config))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def pytest_terminal_summary(terminalreporter) -> None:
    if not STEPS:
        return
    terminalreporter.section("cluster lifecycle: step times")
    for name, elapsed, outcome in STEPS:
        terminalreporter.write_line(f"  {elapsed:7.1f} s  {outcome:6}  {name}")
    terminalreporter.write_line(f"  {sum(s[1] for s in STEPS):7.1f} s  total")

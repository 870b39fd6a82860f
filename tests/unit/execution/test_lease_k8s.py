"""The Kubernetes Lease mapping and the one-line stops, with no API server (the real one: tests/cluster)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from quantumedge.execution.lease import LeaseConflictError, LeaseRecord
from quantumedge.execution.lease_k8s import LeaseApiError, connect, lease_body, record_of, version_of
from quantumedge.execution.settings import ExecutionSettings


def test_a_lease_maps_onto_the_record_with_its_resource_version_as_the_version() -> None:
    lease = Lease(
        metadata=ObjectMeta(name="qe", resourceVersion="4711"),
        spec=LeaseSpec(holderIdentity="execution-a", leaseDurationSeconds=15, leaseTransitions=3),
    )
    assert record_of(lease) == LeaseRecord("execution-a", 3, 15.0, 4711)


def test_a_released_or_bare_lease_reads_as_no_holder_and_no_transitions() -> None:
    bare = {"metadata": {"name": "qe", "resourceVersion": "9"}, "spec": {}}
    assert record_of(bare) == LeaseRecord("", 0, 0.0, 9)
    assert record_of(Lease(metadata=ObjectMeta(resourceVersion="10"), spec=None)).holder == ""


def test_an_opaque_resource_version_is_refused_not_guessed() -> None:
    with pytest.raises(LeaseConflictError):
        version_of("abc")


def test_the_body_carries_the_read_version_and_rounds_the_duration_up() -> None:
    t0, t1 = "2026-12-01T20:00:00.000001Z", "2026-12-01T20:00:04.500000Z"
    body = lease_body("qe", "execution-a", 2, 6.2, "88", t0, t1)
    assert body["metadata"] == {"name": "qe", "resourceVersion": "88"}
    assert body["spec"]["leaseDurationSeconds"] == 7 and body["spec"]["leaseTransitions"] == 2
    assert record_of(body) == LeaseRecord("execution-a", 2, 7.0, 88)
    assert record_of(Lease.from_dict(body)) == record_of(body)  # the model the client sends: same fields
    created = lease_body("qe", "", 0, 15, None, None, t1)
    assert "resourceVersion" not in created["metadata"] and created["spec"]["holderIdentity"] is None


def test_the_backend_and_lease_names_are_settings_with_the_existing_env_name(monkeypatch) -> None:
    monkeypatch.setenv("QE_EXECUTION__LEASE", "kubernetes")
    from quantumedge.settings import load_settings

    cfg = load_settings().execution
    assert cfg.lease == "kubernetes" and cfg.lease_name == "quantumedge-execution"
    with pytest.raises(ValueError):
        ExecutionSettings(lease_namespace="Not_A_Namespace")


def test_no_credentials_stop_with_one_line_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(LeaseApiError) as missing:
        connect("ns", "qe", str(tmp_path / "absent-kubeconfig"))
    assert missing.value.reason == "lease_unavailable" and missing.value.setting == "QE_EXECUTION__LEASE_KUBECONFIG"
    with pytest.raises(LeaseApiError) as in_cluster:  # outside a pod: no service account
        connect("ns", "qe", "")
    assert in_cluster.value.setting == "QE_EXECUTION__LEASE_KUBECONFIG"
    assert "\n" not in str(in_cluster.value)


def test_an_api_server_out_of_reach_stops_with_one_line(tmp_path: Path) -> None:
    from tests.support.procs import free_port

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}],
        "users": [{"name": "u", "user": {"token": "none"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    with pytest.raises(LeaseApiError) as exc:
        connect("ns", "qe", str(path))
    assert exc.value.reason == "lease_unavailable" and "\n" not in str(exc.value)

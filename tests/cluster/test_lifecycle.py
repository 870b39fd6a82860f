"""The chart on a real kube-apiserver with PodSecurity `restricted` enforced: server-side strict validation of
every values scenario, then install, test, upgrade, rollback and uninstall, with the dev values and with the
full values, and a refusal of weakened security by the API server itself.

The tests run in file order and share one cluster; each step is timed (see the table at the end).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from tests.chart.chartlib import CHART, CI_VALUES, COMPONENTS
from tools.cluster.control_plane import ControlPlane

NS = "quantumedge"
RELEASE = "qe"
FULLNAME = "qe-quantumedge"
SCENARIOS = {"defaults": None, **{p.stem: p for p in sorted(CI_VALUES.glob("*.yaml"))}}


def helm_run(cluster: ControlPlane, helm: Path, *args: str, check: bool = True):
    return cluster.run([str(helm), *args], check=check)


def values_args(scenario: str) -> list[str]:
    path = SCENARIOS[scenario]
    return ["-f", str(path)] if path else []


def instance_objects(cluster: ControlPlane, ns: str, release: str) -> list[str]:
    kinds = "deployments,replicasets,pods,services,serviceaccounts,jobs,pdb,hpa,networkpolicies,configmaps,secrets"
    selector = f"app.kubernetes.io/instance={release}"
    out = cluster.kubectl("get", kinds, "-n", ns, "-l", selector, "-o", "name").stdout.split()
    releases = cluster.kubectl("get", "secrets", "-n", ns, "-l", f"owner=helm,name={release}", "-o", "name").stdout
    return out + releases.split()


def deployment_images(cluster: ControlPlane, ns: str, release: str) -> dict[str, str]:
    items = json.loads(
        cluster.kubectl(
            "get", "deployments", "-n", ns, "-l", f"app.kubernetes.io/instance={release}", "-o", "json"
        ).stdout
    )["items"]
    return {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"] for d in items}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_values_scenario_passes_server_side_strict_validation(prepared, helm, step, scenario: str) -> None:
    with step(f"kubectl apply --dry-run=server --validate=strict: {scenario}"):
        rendered = helm_run(prepared, helm, "template", RELEASE, str(CHART), "-n", NS, *values_args(scenario)).stdout
        done = prepared.kubectl(
            "apply", "--dry-run=server", "--validate=strict", "-f", "-", stdin=rendered, check=False
        )
        assert done.returncode == 0, done.stderr
        assert "Warning" not in done.stderr, done.stderr  # PodSecurity warns on workloads that would be refused
        objects = [d for d in yaml.safe_load_all(rendered) if d]
        assert done.stdout.count("(server dry run)") == len(objects), done.stdout  # every object went through


def test_restricted_refuses_a_pod_that_may_run_as_root(prepared, helm, step) -> None:
    weak = [
        "--set",
        "default.containerSecurityContext.runAsNonRoot=false",
        "--set",
        "default.podSecurityContext.runAsNonRoot=false",
    ]
    with step("weakened security (runAsNonRoot: false) refused by the schema, then by the API server"):
        refused = helm_run(prepared, helm, "template", RELEASE, str(CHART), "-n", NS, *weak, check=False)
        assert refused.returncode != 0 and "runAsNonRoot" in refused.stderr
        rendered = helm_run(
            prepared,
            helm,
            "template",
            RELEASE,
            str(CHART),
            "-n",
            NS,
            *weak,
            "--skip-schema-validation",
            "--show-only",
            "templates/tests/test-health.yaml",
        ).stdout
        done = prepared.kubectl("apply", "--dry-run=server", "-n", NS, "-f", "-", stdin=rendered, check=False)
        assert done.returncode != 0
        assert 'violates PodSecurity "restricted:latest"' in done.stderr and "runAsNonRoot" in done.stderr
        # A Deployment is admitted with a warning, and its ReplicaSet then cannot create a single pod.
        helm_run(
            prepared,
            helm,
            "install",
            "weak",
            str(CHART),
            "-n",
            NS,
            *weak,
            "--skip-schema-validation",
            "--set",
            "kafka.topics.provisioner=none",
            "--set",
            "tests.enabled=false",
        )
        _wait_for_failed_create(prepared, "weak-quantumedge-risk")
        helm_run(prepared, helm, "uninstall", "weak", "-n", NS, "--wait")


def _wait_for_failed_create(cluster: ControlPlane, deployment: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sets = json.loads(cluster.kubectl("get", "replicasets", "-n", NS, "-o", "json").stdout)["items"]
        for rs in sets:
            if not rs["metadata"]["name"].startswith(deployment + "-"):
                continue
            for condition in rs.get("status", {}).get("conditions", []):
                if condition["type"] == "ReplicaFailure" and "violates PodSecurity" in condition["message"]:
                    assert rs.get("status", {}).get("replicas", 0) == 0
                    return
        time.sleep(0.5)
    raise AssertionError(f"{deployment}'s ReplicaSet did not report PodSecurity refusing its pods")


def test_install_dev_values_wait_and_helm_test(prepared, helm, step) -> None:
    with step("helm install --wait (dev values)"):
        helm_run(
            prepared,
            helm,
            "install",
            RELEASE,
            str(CHART),
            "-n",
            NS,
            "-f",
            str(CI_VALUES / "dev-values.yaml"),
            "--wait",
            "--timeout",
            "5m",
        )
    images = deployment_images(prepared, NS, RELEASE)
    assert sorted(images) == sorted(f"{FULLNAME}-{c}" for c in COMPONENTS)
    assert set(images.values()) == {"quantumedge:0.1.0"}
    ready = json.loads(prepared.kubectl("get", "deployments", "-n", NS, "-o", "json").stdout)["items"]
    assert all(d["status"].get("readyReplicas") == d["spec"]["replicas"] for d in ready)
    with step("helm test (the chart's health hook pod, admitted under restricted)"):
        done = helm_run(prepared, helm, "test", RELEASE, "-n", NS, "--timeout", "2m")
        assert "Phase:          Succeeded" in done.stdout or "Succeeded" in done.stdout, done.stdout


def test_upgrade_to_new_values_and_image_tag(prepared, helm, step) -> None:
    with step("helm upgrade --wait (image tag 0.1.1, log level DEBUG)"):
        helm_run(
            prepared,
            helm,
            "upgrade",
            RELEASE,
            str(CHART),
            "-n",
            NS,
            "-f",
            str(CI_VALUES / "dev-values.yaml"),
            "--set",
            "image.tag=0.1.1",
            "--set",
            "config.logLevel=DEBUG",
            "--wait",
            "--timeout",
            "5m",
        )
    assert set(deployment_images(prepared, NS, RELEASE).values()) == {"quantumedge:0.1.1"}
    env = json.loads(prepared.kubectl("get", "deployment", f"{FULLNAME}-risk", "-n", NS, "-o", "json").stdout)
    variables = {e["name"]: e.get("value") for e in env["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert variables["QE_LOG_LEVEL"] == "DEBUG"


def test_rollback_restores_the_first_revision(prepared, helm, step) -> None:
    with step("helm rollback 1 --wait"):
        helm_run(prepared, helm, "rollback", RELEASE, "1", "-n", NS, "--wait", "--timeout", "5m")
    assert set(deployment_images(prepared, NS, RELEASE).values()) == {"quantumedge:0.1.0"}
    history = json.loads(helm_run(prepared, helm, "history", RELEASE, "-n", NS, "-o", "json").stdout)
    assert [h["revision"] for h in history] == [1, 2, 3]
    assert history[-1]["status"] == "deployed"


def test_uninstall_leaves_nothing(prepared, helm, step) -> None:
    with step("helm uninstall --wait (dev values)"):
        helm_run(prepared, helm, "uninstall", RELEASE, "-n", NS, "--wait", "--timeout", "5m")
    _assert_gone(prepared, RELEASE)


def _assert_gone(cluster: ControlPlane, release: str) -> None:
    deadline = time.monotonic() + 60
    while (left := instance_objects(cluster, NS, release)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert left == [], f"left behind by helm uninstall: {left}"


def test_full_values_lifecycle(prepared, helm, step) -> None:
    full = str(CI_VALUES / "full-values.yaml")
    with step("helm install --wait (full values: Strimzi topics+users, KEDA, NetworkPolicies, PriorityClass, Vault)"):
        helm_run(prepared, helm, "install", RELEASE, str(CHART), "-n", NS, "-f", full, "--wait", "--timeout", "5m")
    kinds = {
        "kafkatopics": ("kafka", 10),
        "kafkausers": ("kafka", 5),  # one principal per component and the notifier, with its ACLs
        "scaledobjects": (NS, 1),
        "networkpolicies": (NS, 4),
        "poddisruptionbudgets": (NS, 4),
    }
    for kind, (ns, count) in kinds.items():
        names = prepared.kubectl("get", kind, "-n", ns, "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "name")
        assert len(names.stdout.split()) >= count, (kind, names.stdout)
    classes = prepared.kubectl("get", "priorityclass", "-o", "name").stdout.split()
    assert "priorityclass.scheduling.k8s.io/trading" in classes
    pods = json.loads(prepared.kubectl("get", "pods", "-n", NS, "-o", "json").stdout)["items"]
    component = "app.kubernetes.io/component"
    trading = [p for p in pods if not p["metadata"]["labels"].get(component, "").startswith("backtest-sweep")]
    assert trading and {p["spec"].get("priorityClassName") for p in trading} == {"trading"}
    # A backtest sweep is batch work: it never runs at the trading services' priority (it could preempt them).
    assert all(p["spec"].get("priorityClassName") != "trading" for p in pods if p not in trading)
    with step("helm test (full values)"):
        helm_run(prepared, helm, "test", RELEASE, "-n", NS, "--timeout", "2m")
    with step("helm upgrade --wait (full values, image digest changed)"):
        digest = "sha256:" + "f" * 64
        helm_run(
            prepared,
            helm,
            "upgrade",
            RELEASE,
            str(CHART),
            "-n",
            NS,
            "-f",
            full,
            "--set",
            f"image.digest={digest}",
            "--wait",
            "--timeout",
            "5m",
        )
    assert set(deployment_images(prepared, NS, RELEASE).values()) == {f"registry.example.com/quantumedge@{digest}"}
    with step("helm rollback 1 --wait (full values)"):
        helm_run(prepared, helm, "rollback", RELEASE, "1", "-n", NS, "--wait", "--timeout", "5m")
    with step("helm uninstall --wait (full values)"):
        helm_run(prepared, helm, "uninstall", RELEASE, "-n", NS, "--wait", "--timeout", "5m")
    _assert_gone(prepared, RELEASE)
    for kind in ("kafkatopics", "kafkausers"):
        left = prepared.kubectl("get", kind, "-n", "kafka", "-o", "name").stdout.split()
        assert left == [], left
    assert (
        "priorityclass.scheduling.k8s.io/trading" not in prepared.kubectl("get", "priorityclass", "-o", "name").stdout
    )

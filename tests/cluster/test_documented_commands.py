"""The README's and docs/kubernetes.md's Kubernetes commands, word for word, on the real API server: install
the chart as documented, create the operator-token Secret and point the release at it, `helm test`, and
remove the release again (the lifecycle tests that follow use the same namespace)."""

from __future__ import annotations

import json

from tests.chart.chartlib import REPO_ROOT
from tests.chart.doccommands import CLUSTER, documented, exercised_by
from tools.cluster.control_plane import ControlPlane


def run_documented(cluster: ControlPlane, command: str, env: dict[str, str]) -> None:
    done = cluster.run(["bash", "-c", command], check=False, cwd=REPO_ROOT, extra_env=env)
    assert done.returncode == 0, f"{command}\n{done.stdout[-1500:]}\n{done.stderr[-2500:]}"


def test_documented_commands_work_on_the_cluster(prepared, helm, step) -> None:
    commands = list(dict.fromkeys(c for _, c in documented() if exercised_by(c) == CLUSTER))
    assert any(c.startswith("helm install") for c in commands) and any(c.startswith("helm test") for c in commands)
    # The docs' commands call `helm` and `kubectl` from PATH, as a user's shell would.
    env = {"PATH": f"{helm.parent}:{prepared.kubectl_dir()}:/usr/bin:/bin", "QE_OPERATOR_TOKEN": "doc-test-token"}
    for command in commands:
        with step(f"documented: {command[:90]}"):
            run_documented(prepared, command, env)
    deployment = json.loads(
        prepared.kubectl("get", "deployment", "qe-quantumedge-risk", "-n", "quantumedge", "-o", "json").stdout
    )
    env_vars = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    ref = env_vars["QE_VAULT__OPERATOR_TOKEN_SHA256"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == "qe-quantumedge-operator-token"
    with step("helm uninstall (documented install)"):
        prepared.run([str(helm), "uninstall", "qe", "-n", "quantumedge", "--wait"])
        prepared.kubectl("delete", "secret", "qe-quantumedge-operator-token", "-n", "quantumedge")

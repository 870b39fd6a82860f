"""The README's and docs/kubernetes.md's Kubernetes commands, word for word, on the real API server, in the
order the docs give them, as one user's shell would run them (what `eval` exports is kept for the commands
after it): the development installs (the Vault-less PLAINTEXT shape, with the signing-key Secret and the
upgrade that hands it over), `helm test`, the secured default (SASL_SSL, credentials from Vault; kwok runs no
container, so no pod ever dials that Vault or broker), the operator-token Secret and the upgrade that points
at it. Every `helm install` is a fresh release: the one before is removed first. After each install and
upgrade the test checks which shape the pods were given. The release is removed at the end (the lifecycle
tests that follow use the same namespace)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.chart.chartlib import REPO_ROOT
from tests.chart.doccommands import CLUSTER, documented, exercised_by
from tools.cluster.control_plane import ControlPlane

NS = "quantumedge"
# The Secrets the documented commands create (the release does not own them).
DOC_SECRETS = ("qe-quantumedge-operator-token", "qe-quantumedge-signing")


def run_documented(cluster: ControlPlane, command: str, env: dict[str, str]) -> None:
    if command.startswith("eval "):
        # A user's shell keeps what eval exports: carry the QE_ variables into the next commands.
        script = f"{command} && env -0"
        done = cluster.run(["bash", "-c", script], check=False, cwd=REPO_ROOT, extra_env=env)
        assert done.returncode == 0, f"{command}\n{done.stderr[-2500:]}"
        exported = dict(v.split("=", 1) for v in done.stdout.split("\0") if v.startswith("QE_"))
        assert exported, f"{command} exported nothing"
        env.update(exported)
        return
    done = cluster.run(["bash", "-c", command], check=False, cwd=REPO_ROOT, extra_env=env)
    assert done.returncode == 0, f"{command}\n{done.stdout[-1500:]}\n{done.stderr[-2500:]}"


def risk_env(cluster: ControlPlane) -> dict[str, dict]:
    deployment = json.loads(cluster.kubectl("get", "deployment", "qe-quantumedge-risk", "-n", NS, "-o", "json").stdout)
    return {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def assert_shape(cluster: ControlPlane, install: str, command: str) -> None:
    """The pods got what the install asked for (the secured default, or the Vault-less PLAINTEXT dev shape),
    and what the command (the install or an upgrade of it) added."""
    env = risk_env(cluster)
    value = {name: e.get("value") for name, e in env.items()}
    if "vault.addr=" in install:
        assert value["QE_KAFKA__SECURITY_PROTOCOL"] == "SASL_SSL" and value["QE_KAFKA__ALLOW_PLAINTEXT"] == "false"
        assert value["QE_VAULT__ADDR"] == install.split("vault.addr=", 1)[1].split()[0]
        assert "QE_SIGNING__PRIVATE_KEY" not in env  # the keyring comes from Vault
    else:
        assert value["QE_KAFKA__SECURITY_PROTOCOL"] == "PLAINTEXT" and value["QE_KAFKA__ALLOW_PLAINTEXT"] == "true"
        assert "QE_VAULT__ADDR" not in env
    if "signing.privateKeySecret=" in command:
        ref = env["QE_SIGNING__PRIVATE_KEY"]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "qe-quantumedge-signing" and "value" not in env["QE_SIGNING__PRIVATE_KEY"]


def fresh_release(cluster: ControlPlane, helm: Path) -> None:
    if cluster.run([str(helm), "status", "qe", "-n", NS], check=False).returncode == 0:
        cluster.run([str(helm), "uninstall", "qe", "-n", NS, "--wait"])
    cluster.kubectl("delete", "secret", *DOC_SECRETS, "-n", NS, "--ignore-not-found")


def test_documented_commands_work_on_the_cluster(prepared, helm, step) -> None:
    commands = [c for _, c in documented() if exercised_by(c) == CLUSTER]
    installs = [c for c in commands if c.startswith("helm install")]
    assert any("vault.addr=" in c for c in installs) and any("vault.enabled=false" in c for c in installs)
    assert any(c.startswith("helm test") for c in commands)
    # The docs' commands call `helm`, `kubectl` and `quantumedge` from PATH, as a user's shell would.
    path = f"{helm.parent}:{prepared.kubectl_dir()}:{Path(sys.executable).parent}:/usr/bin:/bin"
    env = {"PATH": path, "QE_OPERATOR_TOKEN": "doc-test-token"}
    for command in commands:
        if command.startswith("helm install"):
            fresh_release(prepared, helm)
        with step(f"documented: {command[:90]}"):
            run_documented(prepared, command, env)
        if command.startswith("helm install"):
            install = command
        if command.startswith(("helm install", "helm upgrade")):
            assert_shape(prepared, install, command)
    last = risk_env(prepared)
    assert last["QE_VAULT__OPERATOR_TOKEN_SHA256"]["valueFrom"]["secretKeyRef"]["name"] == DOC_SECRETS[0]
    assert last["QE_SIGNING__PRIVATE_KEY"]["valueFrom"]["secretKeyRef"]["name"] == DOC_SECRETS[1]
    with step("helm uninstall (documented install)"):
        fresh_release(prepared, helm)

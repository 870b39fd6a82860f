"""The executor lease in the chart: by default a Kubernetes Lease (no Vault needed), with a Role limited to that
Lease bound to execution's service account, an API token mounted in execution's pod only, and the settings."""

from __future__ import annotations

import pytest

from tests.chart.chartlib import CHART, DEV_SHAPE, NAMESPACE, HelmError, run_helm, values_args

LEASE = "quantumedge-execution"
ACCOUNT = "quantumedge-execution"


def _pod(render, set_values=(), name: str = "execution") -> dict:
    return render(set_values=list(set_values)).named("Deployment", f"quantumedge-{name}")["spec"]["template"]["spec"]


def _env(pod: dict) -> dict[str, dict]:
    (container,) = pod["containers"]
    return {e["name"]: e for e in container["env"]}


@pytest.mark.parametrize("shape", [(), DEV_SHAPE], ids=["secured-default", "dev-shape"])
def test_the_default_lease_is_a_kubernetes_lease_with_rbac_for_execution_only(render, shape) -> None:
    rendered = render(set_values=list(shape))
    role = rendered.named("Role", "quantumedge-execution-lease")
    assert role["metadata"]["namespace"] == NAMESPACE
    renew, create = role["rules"]
    assert renew == {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "resourceNames": [LEASE],
        "verbs": ["get", "update"],
    }
    # RBAC cannot name an object that does not exist yet: create is its own rule, and nothing else is granted.
    assert create["verbs"] == ["create"] and "resourceNames" not in create
    binding = rendered.named("RoleBinding", "quantumedge-execution-lease")
    assert binding["roleRef"]["name"] == "quantumedge-execution-lease"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE}]
    assert len(rendered.of_kind("Role")) == 1 and len(rendered.of_kind("RoleBinding")) == 1
    env = _env(_pod(render, shape))
    assert env["QE_EXECUTION__LEASE"]["value"] == "kubernetes"
    assert env["QE_EXECUTION__LEASE_NAME"]["value"] == LEASE
    assert env["QE_EXECUTION__LEASE_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"


def test_only_execution_mounts_an_api_token_and_automounting_stays_off(render) -> None:
    pod = _pod(render)
    assert pod["automountServiceAccountToken"] is False
    (volume,) = [v for v in pod["volumes"] if v["name"] == "kube-api-token"]
    sources = volume["projected"]["sources"]
    assert sources[0]["serviceAccountToken"]["path"] == "token" and "audience" not in sources[0]["serviceAccountToken"]
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    (container,) = pod["containers"]
    mount = {m["name"]: m for m in container["volumeMounts"]}["kube-api-token"]
    assert mount["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount" and mount["readOnly"] is True
    for other in ("ingest", "inference", "risk"):
        assert all(v["name"] != "kube-api-token" for v in _pod(render, name=other)["volumes"])


def test_execution_may_reach_the_api_server_on_its_ports_and_private_ranges_only(render) -> None:
    policy = render().named("NetworkPolicy", "quantumedge-execution")
    api = [r for r in policy["spec"]["egress"] if {"port": 6443, "protocol": "TCP"} in r.get("ports", [])]
    assert len(api) == 1
    assert {p["ipBlock"]["cidr"] for p in api[0]["to"]} == {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}
    for other in ("ingest", "inference", "risk"):
        rules = render().named("NetworkPolicy", f"quantumedge-{other}")["spec"]["egress"]
        assert all({"port": 6443, "protocol": "TCP"} not in r.get("ports", []) for r in rules)


def test_the_vault_backend_and_none_render_no_rbac(render) -> None:
    vault = render(set_values=["executorLease.backend=vault"])
    assert not vault.of_kind("Role") and not vault.of_kind("RoleBinding")
    assert _env(_pod(render, ["executorLease.backend=vault"]))["QE_EXECUTION__LEASE"]["value"] == "vault"
    assert all(v["name"] != "kube-api-token" for v in _pod(render, ["executorLease.backend=vault"])["volumes"])
    off = render(set_values=["executorLease.backend=none", "executorLease.name=x"])
    assert not off.of_kind("Role") and "QE_EXECUTION__LEASE_NAME" not in _env(
        _pod(render, ["executorLease.backend=none"])
    )


def test_a_named_lease_is_the_one_the_role_names(render) -> None:
    rendered = render(set_values=["executorLease.name=acct-7.lease"])
    assert rendered.named("Role", "quantumedge-execution-lease")["rules"][0]["resourceNames"] == ["acct-7.lease"]
    assert (
        _env(_pod(render, ["executorLease.name=acct-7.lease"]))["QE_EXECUTION__LEASE_NAME"]["value"] == "acct-7.lease"
    )


@pytest.mark.parametrize(
    "bad",
    [
        ["executorLease.backend=etcd"],
        ["executorLease.name=Not_A_Name"],
        ["executorLease.durationSeconds=0"],
        [*DEV_SHAPE, "executorLease.backend=vault"],  # the vault lease without Vault
    ],
)
def test_invalid_lease_values_are_refused(tools, bad) -> None:
    with pytest.raises(HelmError):
        run_helm(tools.helm, "template", "qe", str(CHART), *values_args((), bad))

"""What a first `helm install` needs to work as documented: a replication factor that fits any cluster, the
operator token hash without Vault, a PriorityClass the chart creates, the `helm test` hook, and the rules on
which services may scale to zero."""

from __future__ import annotations

import pytest

from tests.chart.chartlib import CHART as CHART_DIR
from tests.chart.chartlib import COMPONENTS, DEV_SHAPE, HelmError, run_helm, values_args


def env_of(deployment: dict) -> dict[str, dict]:
    return {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_replication_factor_default_is_the_brokers_own(render) -> None:
    # The topic Job exists only on a PLAINTEXT dev broker; the secured default has none (no Kafka identity).
    assert render().of_kind("Job") == []
    (job,) = render(set_values=DEV_SHAPE).of_kind("Job")
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["QE_KAFKA__REPLICATION_FACTOR"] == "-1"
    topics = render(["full-values.yaml"]).of_kind("KafkaTopic")
    assert topics and all(
        "replicas" not in t["spec"] and "min.insync.replicas" not in t["spec"]["config"] for t in topics
    )
    pinned = render(["full-values.yaml"], ["kafka.topics.replicationFactor=3"]).of_kind("KafkaTopic")
    assert {t["spec"]["replicas"] for t in pinned} == {3}
    assert {t["spec"]["config"]["min.insync.replicas"] for t in pinned} == {"2"}


@pytest.mark.parametrize("value", ["0", "-2"])
def test_replication_factor_zero_or_below_minus_one_is_refused(tools, value: str) -> None:
    with pytest.raises(HelmError, match="replicationFactor"):
        run_helm(
            tools.helm,
            "template",
            "qe",
            str(CHART_DIR),
            *values_args(set_values=[f"kafka.topics.replicationFactor={value}"]),
        )


def test_operator_token_hash_from_a_secret_without_vault(render) -> None:
    rendered = render(set_values=[*DEV_SHAPE, "operatorToken.existingSecret=qe-operator-token"])
    for deployment in rendered.of_kind("Deployment"):
        component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        env = env_of(deployment)
        if component == "ingest":
            assert "QE_VAULT__OPERATOR_TOKEN_SHA256" not in env  # ingest has no changing call
            continue
        ref = env["QE_VAULT__OPERATOR_TOKEN_SHA256"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "qe-operator-token", "key": "sha256"}
        assert "value" not in env["QE_VAULT__OPERATOR_TOKEN_SHA256"]
        assert "QE_VAULT__ADDR" not in env  # Vault stays off
    assert 'Secret "qe-operator-token"' in rendered.notes


def test_the_operator_secret_also_works_with_vault(render) -> None:
    rendered = render(set_values=["operatorToken.existingSecret=qe-operator-token"])
    (risk,) = rendered.component("Deployment", "risk")
    env = env_of(risk)
    assert env["QE_VAULT__OPERATOR_TOKEN_SHA256"]["valueFrom"]["secretKeyRef"]["name"] == "qe-operator-token"
    assert env["QE_VAULT__ADDR"]["value"] == "https://vault.vault.svc:8200"
    assert 'Secret "qe-operator-token"' in rendered.notes


def test_notes_explain_the_operator_secret_when_nothing_is_configured(render) -> None:
    notes = render(set_values=DEV_SHAPE).notes
    assert "No operator token hash is configured" in notes
    assert "kubectl -n quantumedge create secret generic quantumedge-operator-token" in notes
    assert "sha256sum" in notes and "operatorToken.existingSecret=quantumedge-operator-token" in notes
    assert "Vault is disabled" in notes and "Kafka: PLAINTEXT with allowPlaintext" in notes
    assert "Topics: job" in notes


def test_notes_of_the_secured_default_name_vault_and_the_kafka_principals(render) -> None:
    notes = render().notes
    # The operator token hashes, the services' roles and their Kafka credentials all come from Vault.
    assert "No operator token hash is configured" not in notes and "Vault is disabled" not in notes
    assert 'read from Vault at "quantumedge/operator/token-hashes"' in notes
    assert "quantumedge secrets init --auth kubernetes --kubernetes-namespace quantumedge" in notes
    assert "Kafka: SASL_SSL" in notes and "quantumedge secrets rotate quantumedge/kafka/<component>" in notes
    # No topic Job on a secured broker: the Kafka admin creates the principals' ACLs (and topics).
    assert "Topics: none" in notes and "quantumedge topics --acls" in notes
    for component in COMPONENTS:
        assert f"User:quantumedge-{component}" in notes


def test_the_setting_that_must_not_be_set_through_config_settings_is_named_at_its_own_path(tools) -> None:
    with pytest.raises(HelmError) as refused:
        run_helm(
            tools.helm, "template", "qe", str(CHART_DIR), "--set", "config.settings.vault.operator_token_sha256=ab"
        )
    assert "/config/settings/vault" in refused.value.stderr


def test_the_chart_creates_the_priority_class_its_pods_use(render) -> None:
    rendered = render(["full-values.yaml"])
    (priority,) = rendered.of_kind("PriorityClass")
    assert priority["metadata"]["name"] == "trading" and priority["value"] > 0 and priority["globalDefault"] is False
    for deployment in rendered.of_kind("Deployment"):
        assert deployment["spec"]["template"]["spec"]["priorityClassName"] == "trading"
    assert render().of_kind("PriorityClass") == []
    assert all("priorityClassName" not in d["spec"]["template"]["spec"] for d in render().of_kind("Deployment"))


def test_helm_test_hook_asks_every_running_service_for_its_health(render) -> None:
    from quantumedge.cli import _parser

    (pod,) = render().of_kind("Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert [c["name"] for c in spec["containers"]] == list(COMPONENTS)
    for container in spec["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        args = _parser().parse_args(container["args"])  # a real command of the image's CLI
        assert args.command == "health"
        assert args.address.startswith(f"quantumedge-{container['name']}:")
        assert args.service == f"quantumedge.v1.{container['name'].title()}Service"
    # A disabled service, or one KEDA may have put to sleep, is not asked.
    (pod,) = render(["full-values.yaml"], ["components.ingest.enabled=false"]).of_kind("Pod")
    assert [c["name"] for c in pod["spec"]["containers"]] == ["risk", "execution"]
    assert render(set_values=["tests.enabled=false"]).of_kind("Pod") == []


def test_risk_never_scales_to_zero(tools) -> None:
    for values in (["components.risk.replicaCount=0"], ["components.risk.autoscaling.mode=keda"]):
        with pytest.raises(HelmError, match=r"components\.risk"):
            run_helm(tools.helm, "template", "qe", str(CHART_DIR), *values_args(set_values=values))


def test_only_inference_scales_on_lag_down_to_zero(render) -> None:
    (scaled,) = render(["full-values.yaml"]).of_kind("ScaledObject")
    assert scaled["metadata"]["labels"]["app.kubernetes.io/component"] == "inference"
    assert scaled["spec"]["minReplicaCount"] == 0

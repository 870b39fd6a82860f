"""The chart's Kafka security: SASL_SSL by default with credentials from Vault, plaintext only when allowed, and
one principal per component whose ACLs - rendered as Strimzi KafkaUsers or listed in NOTES - are exactly the
code's plan (quantumedge.shared.bus.acls, from quantumedge.shared.topics)."""

from __future__ import annotations

import os
import re

import pytest

from tests.chart.chartlib import CHART, COMPONENTS, HelmError, run_helm, values_args


def env_of(rendered, component: str) -> dict[str, str]:
    (dep,) = rendered.component("Deployment", component)
    return {e["name"]: e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"] if "value" in e}


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    from quantumedge.settings import load_settings

    for name in [n for n in os.environ if n.startswith(("QE_", "OTEL_"))]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def plan_of(component: str, prefix: str = "", template: str = "quantumedge-{service}") -> set[tuple[str, str, str]]:
    from quantumedge.shared.bus import acls

    return {
        (e.resource_type, e.name, e.operation) for e in acls.service_plan(component, prefix=prefix, template=template)
    }


def test_default_release_is_sasl_ssl_with_credentials_from_vault(render, monkeypatch) -> None:
    from quantumedge.shared.bus.kafka_security import check_protocol

    rendered = render()
    assert rendered.of_kind("Job") == [], "the topic Job has no Kafka identity: not in a secured release"
    for component in COMPONENTS:
        settings = settings_from(env_of(rendered, component), monkeypatch)
        assert settings.kafka.security_protocol == "SASL_SSL" and not settings.kafka.allow_plaintext
        assert settings.kafka.credentials_path.format(service=component) == f"quantumedge/kafka/{component}"
        assert settings.vault.addr and settings.vault.role_for(component) == component
        check_protocol(settings.kafka)  # would raise on a plaintext protocol


def test_dev_values_allow_plaintext_explicitly(render, monkeypatch) -> None:
    from quantumedge.shared.bus.kafka_security import check_protocol

    rendered = render(["dev-values.yaml"])
    for component in COMPONENTS:
        settings = settings_from(env_of(rendered, component), monkeypatch)
        assert (settings.kafka.security_protocol, settings.kafka.allow_plaintext) == ("PLAINTEXT", True)
        check_protocol(settings.kafka)
    assert len(rendered.of_kind("Job")) == 1


def test_strimzi_kafka_users_carry_exactly_the_codes_acls(render) -> None:
    rendered = render(["full-values.yaml"])
    users = rendered.of_kind("KafkaUser")
    # full-values turns the notifier on: it is a principal of its own too.
    assert sorted(u["metadata"]["name"] for u in users) == sorted(f"prod-{c}" for c in [*COMPONENTS, "notify"])
    for user in users:
        component = user["metadata"]["labels"]["app.kubernetes.io/component"]
        assert user["metadata"]["namespace"] == "kafka"
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == "kafka"
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        assert user["spec"]["authorization"]["type"] == "simple"
        rendered_acls = set()
        for acl in user["spec"]["authorization"]["acls"]:
            assert acl["resource"]["patternType"] == "literal" and acl["host"] == "*"
            assert acl.get("type", "allow") == "allow"
            rendered_acls |= {(acl["resource"]["type"], acl["resource"]["name"], op) for op in acl["operations"]}
        assert rendered_acls == plan_of(component, prefix="prod-", template="prod-{service}"), component


def test_a_disabled_component_gets_no_principal(render) -> None:
    rendered = render(["full-values.yaml"], set_values=["components.inference.enabled=false"])
    assert sorted(u["metadata"]["name"] for u in rendered.of_kind("KafkaUser")) == sorted(
        f"prod-{c}" for c in [*COMPONENTS, "notify"] if c != "inference"
    )


def test_notes_document_every_principals_acls_when_the_chart_does_not_create_them(render) -> None:
    notes = render().notes
    assert "quantumedge topics --acls" in notes
    assert "quantumedge secrets rotate quantumedge/kafka/<component> --stdin-json" in notes
    documented: dict[str, set[tuple[str, str, str]]] = {}
    current = None
    for line in notes.splitlines():
        if match := re.fullmatch(r"  User:quantumedge-(\w+)", line):
            current = documented.setdefault(match.group(1), set())
        elif current is not None and (match := re.fullmatch(r"    ([A-Za-z,]+)\s+(topic|group) (\S+)", line)):
            current |= {(match.group(2), match.group(3), op) for op in match.group(1).split(",")}
        elif current is not None and line.strip() and not line.startswith("    "):
            current = None
    assert set(documented) == set(COMPONENTS)
    for component in COMPONENTS:
        assert documented[component] == plan_of(component), component


@pytest.mark.parametrize(
    ("set_values", "mentioned"),
    [
        (["kafka.securityProtocol=PLAINTEXT"], "allowPlaintext"),
        (["kafka.securityProtocol=SASL_PLAINTEXT"], "allowPlaintext"),
        (["vault.enabled=false"], "enabled"),
        (["kafka.topics.provisioner=job"], "provisioner=job"),
        (["kafka.users.provisioner=strimzi", "kafka.saslMechanism=SCRAM-SHA-256"], "SCRAM-SHA-512"),
        (["kafka.users.nameTemplate=quantumedge"], "nameTemplate"),
        (["kafka.credentialsPath=quantumedge/kafka/static"], "credentialsPath"),
        (["kafka.securityProtocol=TLS"], "securityProtocol"),
    ],
    ids=[
        "plaintext-not-allowed",
        "sasl-plaintext-not-allowed",
        "sasl-ssl-without-vault",
        "topic-job-on-a-secured-cluster",
        "strimzi-users-are-scram-512",
        "principal-without-service",
        "credentials-without-service",
        "unknown-protocol",
    ],
)
def test_insecure_or_incoherent_kafka_values_fail_at_render_time(tools, set_values: list[str], mentioned: str) -> None:
    with pytest.raises(HelmError) as failure:
        run_helm(tools.helm, "template", "quantumedge", str(CHART), *values_args(set_values=set_values))
    assert mentioned in failure.value.stderr


# Strimzi's KafkaUser (v1beta2) schema, as its documentation gives it: the fields and values the CRD accepts.
ACL_OPERATIONS = {
    "Read",
    "Write",
    "Create",
    "Delete",
    "Alter",
    "Describe",
    "ClusterAction",
    "AlterConfigs",
    "DescribeConfigs",
    "IdempotentWrite",
    "All",
}


def test_kafka_users_follow_strimzi_crd(render) -> None:
    users = render(["full-values.yaml"]).of_kind("KafkaUser")
    assert users
    for obj in users:
        assert obj["apiVersion"] in ("kafka.strimzi.io/v1beta2", "kafka.strimzi.io/v1")
        assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}
        name = obj["metadata"]["name"]
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?", name), name
        spec = obj["spec"]
        assert set(spec) <= {"authentication", "authorization", "quotas", "template"}
        assert spec["authentication"]["type"] in ("tls", "tls-external", "scram-sha-512")
        assert set(spec["authorization"]) == {"type", "acls"} and spec["authorization"]["type"] == "simple"
        for acl in spec["authorization"]["acls"]:
            assert set(acl) <= {"resource", "type", "host", "operations", "operation"}
            assert set(acl["resource"]) <= {"type", "name", "patternType"}
            assert acl["resource"]["type"] in ("topic", "group", "cluster", "transactionalId")
            assert acl["resource"]["patternType"] in ("literal", "prefix")
            assert isinstance(acl["resource"]["name"], str) and acl["resource"]["name"]
            assert acl["operations"] and set(acl["operations"]) <= ACL_OPERATIONS

"""helm lint, helm template with the default values and with every optional feature on, and offline schema
validation of every rendered object (Kubernetes kinds by kubernetes-validate's shipped schemas, KEDA's
ScaledObject by the models generated from KEDA's CRD, Strimzi's KafkaTopic by its CRD's rules)."""

from __future__ import annotations

import pytest

from tests.chart.chartlib import CHART, CI_VALUES, COMPONENTS, run_helm, values_args

# The chart's kubeVersion floor and the newest Kubernetes the schemas know.
KUBE_VERSIONS = ("1.27.0", "1.37.0")

SCENARIOS = {
    "defaults": [],
    "all-features": ["full-values.yaml"],
    "dev": ["dev-values.yaml"],
    "hpa": ["hpa-values.yaml"],
    "sweep": ["sweep-values.yaml"],
}

CORE_KINDS = {
    "Deployment",
    "Service",
    "ServiceAccount",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "NetworkPolicy",
    "Job",
    "ConfigMap",
    "Pod",
    "PriorityClass",
    "Role",
    "RoleBinding",
}


def test_every_values_file_in_ci_is_exercised() -> None:
    assert sorted(p.name for p in CI_VALUES.glob("*.yaml")) == sorted(f for files in SCENARIOS.values() for f in files)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_lint_strict(tools, scenario: str) -> None:
    result = run_helm(tools.helm, "lint", str(CHART), "--strict", *values_args(SCENARIOS[scenario]))
    assert "0 chart(s) failed" in result.stdout


def test_defaults_render_the_four_services(render) -> None:
    rendered = render()
    kinds = sorted({o["kind"] for o in rendered.objects})
    # No topic Job: the default release talks SASL_SSL, and the Job has no Kafka identity (dev values have it).
    # The Pod is `helm test`'s.
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "NetworkPolicy",
        "Pod",
        "PodDisruptionBudget",
        "Role",  # execution's executor lease (tests/chart/test_executor_lease.py)
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]
    for kind in ("Deployment", "Service", "ServiceAccount"):
        assert sorted(o["metadata"]["labels"]["app.kubernetes.io/component"] for o in rendered.of_kind(kind)) == sorted(
            COMPONENTS
        )
    # Optional features stay off by default; NetworkPolicies are on (tests/chart/test_network_policies.py).
    for kind in ("HorizontalPodAutoscaler", "ScaledObject", "KafkaTopic", "KafkaUser"):
        assert rendered.of_kind(kind) == []


def test_all_features_render_every_optional_kind(render) -> None:
    rendered = render(["full-values.yaml"])
    kinds = {o["kind"] for o in rendered.objects}
    assert {
        "Deployment",
        "Service",
        "ServiceAccount",
        "PodDisruptionBudget",
        "ScaledObject",
        "NetworkPolicy",
        "KafkaTopic",
    } <= kinds
    # Strimzi provisions the topics in that mode, so the hook Job is not rendered (a sweep is a release of its
    # own: sweep-values.yaml).
    assert "Job" not in kinds
    # KEDA makes its own HPA for inference, the one component that scales; the chart renders none beside it.
    assert "HorizontalPodAutoscaler" not in kinds
    hpa_kinds = {o["kind"] for o in render(["hpa-values.yaml"]).objects}
    assert "HorizontalPodAutoscaler" in hpa_kinds and "ScaledObject" not in hpa_kinds


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_core_objects_validate_against_kubernetes_schemas(render, scenario: str, kube_version: str) -> None:
    import kubernetes_validate

    checked = 0
    for obj in render(SCENARIOS[scenario]).objects:
        if obj["kind"] not in CORE_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} invalid for Kubernetes {kube_version}: {exc.message}")
        checked += 1
    # A sweep release is its two Jobs, its ConfigMaps and the default-deny policy; a trading release has more.
    assert checked >= (5 if scenario == "sweep" else 13)


def test_every_rendered_kind_is_covered_by_a_validator(render) -> None:
    kinds = {o["kind"] for s in SCENARIOS.values() for o in render(s).objects}
    # KafkaUser: tests/chart/test_kafka_security.py::test_kafka_users_follow_strimzi_crd
    assert kinds <= CORE_KINDS | {"ScaledObject", "KafkaTopic", "KafkaUser", "ServiceMonitor", "PodMonitor"}


def test_scaled_objects_validate_against_keda_crd(render, tools, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(tools.keda_models))
    from cloudcoil.models.keda.v1alpha1 import ScaledObject

    scaled = render(["full-values.yaml"]).of_kind("ScaledObject")
    assert scaled
    for obj in scaled:
        model = ScaledObject.model_validate(obj)
        # The models ignore unknown fields; a round trip that loses a field means it is not in KEDA's CRD.
        assert model.model_dump(by_alias=True, exclude_unset=True, mode="json") == obj
        for trigger in model.spec.triggers:
            assert trigger.type == "kafka"
            assert set(trigger.metadata) >= {"bootstrapServers", "consumerGroup", "topic", "lagThreshold"}
            # KEDA trigger metadata is a map of strings.
            assert all(isinstance(v, str) for v in trigger.metadata.values())


def test_kafka_topics_follow_strimzi_crd(render) -> None:
    topics = render(["full-values.yaml"]).of_kind("KafkaTopic")
    assert topics
    for obj in topics:
        assert obj["apiVersion"] in ("kafka.strimzi.io/v1beta2", "kafka.strimzi.io/v1")
        assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}
        assert obj["metadata"]["labels"]["strimzi.io/cluster"]
        spec = obj["spec"]
        assert set(spec) <= {"topicName", "partitions", "replicas", "config"}
        assert isinstance(spec["partitions"], int) and spec["partitions"] >= 1
        # No replicas (replicationFactor -1): the Topic Operator takes the broker's default.replication.factor.
        assert "replicas" not in spec or (isinstance(spec["replicas"], int) and 1 <= spec["replicas"] <= 32767)
        assert all(isinstance(v, str | int | bool) for v in spec["config"].values())
        # metadata.name must be a DNS-1123 subdomain; the real name (with dots) sits in topicName.
        name = obj["metadata"]["name"]
        assert len(name) <= 63 and name.replace("-", "").isalnum() and name == name.lower()


def test_chart_app_version_is_the_package_version() -> None:
    import tomllib

    import yaml

    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((CHART.parents[1] / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]


def test_prometheus_monitors_and_dashboards(render) -> None:
    """ServiceMonitor / PodMonitor as the Prometheus Operator's CRDs define them (monitoring.coreos.com/v1:
    spec.selector / namespaceSelector, endpoints[] or podMetricsEndpoints[] with port, path, interval), and the
    dashboards ConfigMap carries Grafana's sidecar label and every JSON file under dashboards/."""
    import json

    from tests.chart.chartlib import CHART

    rendered = render(["full-values.yaml"])
    (service_monitor,) = rendered.of_kind("ServiceMonitor")
    (pod_monitor,) = rendered.of_kind("PodMonitor")
    for monitor, key in ((service_monitor, "endpoints"), (pod_monitor, "podMetricsEndpoints")):
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        spec = monitor["spec"]
        assert set(spec) == {"selector", key, "namespaceSelector"}
        assert spec["selector"]["matchLabels"]["app.kubernetes.io/instance"] == "quantumedge"
        (endpoint,) = spec[key]
        assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
        assert endpoint["interval"].endswith(("s", "m"))
    assert service_monitor["metadata"]["labels"]["release"] == "prometheus"
    for service in rendered.of_kind("Service"):
        if service["metadata"]["labels"]["app.kubernetes.io/component"] != "console":
            assert "metrics" in {p["name"] for p in service["spec"]["ports"]}
    (dashboards,) = [c for c in rendered.of_kind("ConfigMap") if "grafana_dashboard" in c["metadata"]["labels"]]
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    files = sorted(p.name for p in (CHART / "dashboards").glob("*.json"))
    assert sorted(dashboards["data"]) == files and files
    for name in files:
        assert json.loads(dashboards["data"][name])["panels"]
    off = render([], set_values=["metrics.enabled=false"])
    assert not off.of_kind("ConfigMap") and all(
        "metrics" not in {p["name"] for p in s["spec"]["ports"]} for s in off.of_kind("Service")
    )

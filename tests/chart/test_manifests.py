"""Assertions on the rendered manifests: probes, security contexts, resources, labels and selectors, no secret
values, one autoscaler per component, switchable components, and the contracts the chart shares with the
code (settings names, topics, Vault roles, CLI commands)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.chart.chartlib import CHART, COMPONENTS, PORTS, RELEASE

SCENARIOS = {"defaults": [], "all-features": ["full-values.yaml"], "dev": ["dev-values.yaml"]}
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "helm.sh/chart",
)
SECRETISH = re.compile(r"secret|password|passphrase|token|api_?key|private_?key|credential", re.IGNORECASE)

# The console and the notifier (console.enabled, notify.enabled) are Deployments beside the four services.
OPERATOR_TOOLS = ("console", "notify")


def pipeline(deployments: list[dict]) -> list[dict]:
    return [d for d in deployments if d["metadata"]["labels"]["app.kubernetes.io/component"] in COMPONENTS]


def containers(obj: dict) -> list[dict]:
    spec = obj["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def pod_workloads(rendered) -> list[dict]:
    return rendered.of_kind("Deployment") + rendered.of_kind("Job")


def literal_env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


# --- probes ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_service_container_has_native_grpc_probes(render, scenario: str) -> None:
    deployments = pipeline(render(SCENARIOS[scenario]).of_kind("Deployment"))
    assert len(deployments) == 4
    for dep in deployments:
        component = dep["metadata"]["labels"]["app.kubernetes.io/component"]
        (container,) = containers(dep)
        port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
        assert port == PORTS[component]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert set(container[probe]) >= {"grpc", "periodSeconds", "failureThreshold"}, (component, probe)
            assert container[probe]["grpc"]["port"] == port
            assert "httpGet" not in container[probe] and "exec" not in container[probe]
        # Readiness asks for the component's own service: SERVING only once its loops run.
        assert container["readinessProbe"]["grpc"]["service"] == f"quantumedge.v1.{component.title()}Service"
        assert container["args"] == ["serve", component]


# --- security ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_pods_and_containers_are_locked_down(render, scenario: str) -> None:
    workloads = pod_workloads(render(SCENARIOS[scenario]))
    assert workloads
    for obj in workloads:
        pod = obj["spec"]["template"]["spec"]
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["runAsUser"] > 0, where
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        # No Kubernetes API token in any pod (Vault gets its own projected, audience-bound token).
        assert pod["automountServiceAccountToken"] is False, where
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC"), where
        for c in containers(obj):
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc.get("privileged", False) is False, where
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), where
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", where
            # The root filesystem is read-only: /tmp must be a writable emptyDir.
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            volumes = {v["name"]: v for v in pod["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], where


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_container_has_requests_and_limits(render, scenario: str) -> None:
    for obj in pod_workloads(render(SCENARIOS[scenario])):
        for c in containers(obj):
            for kind in ("requests", "limits"):
                assert set(c["resources"][kind]) >= {"cpu", "memory"}, f"{obj['metadata']['name']} {kind}"


def test_only_ingest_has_a_data_volume_and_it_is_an_empty_dir_by_default(render) -> None:
    rendered = render()
    for dep in rendered.of_kind("Deployment"):
        component = dep["metadata"]["labels"]["app.kubernetes.io/component"]
        volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
        assert ("data" in volumes) == (component == "ingest")
        # Only emptyDirs (and the projected, read-only Vault token): nothing is written to the image's filesystem.
        assert all("emptyDir" in v or set(v) == {"name", "projected"} for v in volumes.values())
    ingest = rendered.component("Deployment", "ingest")[0]
    assert literal_env(containers(ingest)[0])["QE_DATA_DIR"] == "/data"


# --- labels and selectors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_standard_labels_on_every_object(render, scenario: str) -> None:
    for obj in render(SCENARIOS[scenario]).objects:
        labels = obj["metadata"]["labels"]
        for label in STANDARD_LABELS:
            assert labels.get(label), f"{obj['kind']}/{obj['metadata']['name']} lacks {label}"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_selectors_use_name_instance_component_only(render, scenario: str) -> None:
    rendered = render(SCENARIOS[scenario])
    for dep in pipeline(rendered.of_kind("Deployment")):
        component = dep["metadata"]["labels"]["app.kubernetes.io/component"]
        selector = dep["spec"]["selector"]["matchLabels"]
        assert selector == {
            "app.kubernetes.io/name": "quantumedge",
            "app.kubernetes.io/instance": RELEASE,
            "app.kubernetes.io/component": component,
        }
        assert selector.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
        (service,) = rendered.component("Service", component)
        assert service["spec"]["selector"] == selector
        for pdb in rendered.component("PodDisruptionBudget", component):
            assert pdb["spec"]["selector"]["matchLabels"] == selector
        for policy in rendered.component("NetworkPolicy", component):
            assert policy["spec"]["podSelector"]["matchLabels"] == selector


# --- secrets -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_secret_values_in_manifests(render, scenario: str, tmp_path: Path) -> None:
    from tools.secret_scan import ScanError, gitleaks_binary, scan_tree

    rendered = render(SCENARIOS[scenario])
    assert rendered.of_kind("Secret") == [], "the chart must reference secrets, never carry them"
    for obj in pod_workloads(rendered):
        for c in containers(obj):
            for name in literal_env(c):
                # Secret-looking variables may only reference a Secret (valueFrom); paths of Vault keys are fine.
                assert not SECRETISH.search(name) or name.endswith(("_PATH", "_FILE")), f"literal value for {name}"
    (tmp_path / "rendered.yaml").write_text(yaml.safe_dump_all(rendered.objects))
    try:
        found = scan_tree(tmp_path, gitleaks=gitleaks_binary())  # the scanner and detectors of `make secrets-scan`
    except ScanError as exc:
        pytest.fail(f"secret scanner unavailable: {exc}", pytrace=False)
    assert found == [], f"secret-looking values rendered: {[str(f) for f in found]}"


# --- autoscaling -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "set_values",
    [
        [],
        ["components.inference.autoscaling.mode=hpa"],
        ["components.inference.autoscaling.mode=keda"],
        [
            "default.autoscaling.mode=hpa",
            "components.ingest.autoscaling.mode=none",
            "components.risk.autoscaling.mode=none",
            "components.execution.autoscaling.mode=none",
        ],
    ],
    ids=["none", "hpa", "keda", "default-hpa"],
)
def test_hpa_and_keda_never_both_for_one_component(render, set_values: list[str]) -> None:
    rendered = render(set_values=set_values)
    for component in COMPONENTS:
        hpas = rendered.component("HorizontalPodAutoscaler", component)
        scaled = rendered.component("ScaledObject", component)
        assert len(hpas) + len(scaled) <= 1, component
        (dep,) = rendered.component("Deployment", component)
        # With an autoscaler the replica count is its own; an upgrade must not reset it.
        assert ("replicas" in dep["spec"]) == (not hpas and not scaled), component
        if component in ("ingest", "risk", "execution"):
            # Single writers: one replica, and never two at once during a rollout either.
            assert not hpas and not scaled and dep["spec"]["replicas"] == 1
            assert dep["spec"]["strategy"]["type"] == "Recreate", component


def test_keda_scales_on_the_consumer_group_lag_of_the_input_topics(render) -> None:
    rendered = render(
        set_values=[
            "components.inference.autoscaling.mode=keda",
            "kafka.topicPrefix=t1-",
        ]
    )
    expected = {
        "inference": {"t1-ingest.trades.v1", "t1-ingest.book.v1", "t1-ingest.depth.v1"},
    }
    for component, topics in expected.items():
        (scaled,) = rendered.component("ScaledObject", component)
        assert scaled["spec"]["scaleTargetRef"]["name"] == f"{RELEASE}-{component}"
        triggers = scaled["spec"]["triggers"]
        assert {t["metadata"]["topic"] for t in triggers} == topics
        assert {t["metadata"]["consumerGroup"] for t in triggers} == {component}


def test_singleton_components_are_replaced_not_rolled(render) -> None:
    rendered = render()
    for component in ("ingest", "execution"):
        (dep,) = rendered.component("Deployment", component)
        assert dep["spec"]["strategy"] == {"type": "Recreate"}


# --- switchable components ---------------------------------------------------------------------------------


@pytest.mark.parametrize("component", COMPONENTS)
def test_a_disabled_component_renders_nothing(render, component: str) -> None:
    rendered = render(
        ["full-values.yaml"],
        set_values=[f"components.{component}.enabled=false", "components.execution.venue=paper"],
    )
    leftovers = [
        f"{o['kind']}/{o['metadata']['name']}"
        for o in rendered.objects
        if o["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]
    assert leftovers == []
    assert f"svc/{RELEASE}-{component} " not in rendered.notes
    others = [c for c in COMPONENTS if c != component]
    assert sorted(
        d["metadata"]["labels"]["app.kubernetes.io/component"] for d in pipeline(rendered.of_kind("Deployment"))
    ) == sorted(others)
    # The remaining NetworkPolicies neither open the disabled component's port nor name its pods.
    for policy in rendered.of_kind("NetworkPolicy"):
        spec = policy["spec"]
        peers = [peer for rule in spec.get("ingress") or [] for peer in rule.get("from") or []]
        peers += [peer for rule in spec.get("egress") or [] for peer in rule.get("to") or []]
        named = {
            (peer.get("podSelector") or {}).get("matchLabels", {}).get("app.kubernetes.io/component") for peer in peers
        }
        assert component not in named
        egress_ports = {p.get("port") for rule in spec.get("egress") or [] for p in rule.get("ports") or []}
        assert PORTS[component] not in egress_ports


# --- network policy ----------------------------------------------------------------------------------------


def test_network_policy_shape_with_every_feature(render) -> None:
    """Structure only; what the policies allow and deny is evaluated in tests/chart/test_network_policies.py."""
    rendered = render(["full-values.yaml"])
    policies = {p["metadata"]["name"]: p for p in rendered.of_kind("NetworkPolicy")}
    # Strimzi provisions the topics in this scenario: no topic Job, so no policy for it.
    expected = [
        f"{RELEASE}-default-deny",
        f"{RELEASE}-test",
        *(f"{RELEASE}-{c}" for c in (*COMPONENTS, *OPERATOR_TOOLS)),
    ]
    assert sorted(policies) == sorted(expected)
    for component in COMPONENTS:
        spec = policies[f"{RELEASE}-{component}"]["spec"]
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        grpc_rule, metrics_rule = spec["ingress"]
        assert grpc_rule["ports"] == [{"port": PORTS[component], "protocol": "TCP"}]
        assert grpc_rule["from"][0] == {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "quantumedge-operators"}}
        }
        assert {"podSelector": {"matchLabels": {**selector_of("console")}}} in grpc_rule["from"]
        assert metrics_rule["ports"] == [{"port": 9464, "protocol": "TCP"}]
        egress_ports = {p["port"] for r in spec["egress"] for p in r["ports"]}
        assert {53, 9092, 8200, 4317} <= egress_ports
        # Only ingest (market data) and execution (orders, to the configured CIDRs) talk to the exchange.
        assert (443 in egress_ports) == (component in ("ingest", "execution"))
        assert all(r.get("to") for r in spec["egress"]), "every egress rule names its peers"


def selector_of(component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "quantumedge",
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/component": component,
    }


# --- contracts with the code -------------------------------------------------------------------------------


def _settings_path_exists(model: type, parts: list[str]) -> bool:
    from pydantic import BaseModel

    if not parts:
        return True
    fields = {name.upper(): info for name, info in model.model_fields.items()}
    info = fields.get(parts[0])
    if info is None:
        return False
    annotation = info.annotation
    if len(parts) == 1:
        return True
    return (
        isinstance(annotation, type)
        and issubclass(annotation, BaseModel)
        and _settings_path_exists(annotation, parts[1:])
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_qe_variable_is_a_real_setting_and_loads(render, scenario: str, monkeypatch) -> None:
    from quantumedge.settings import Settings, load_settings

    for dep in render(SCENARIOS[scenario]).of_kind("Deployment"):
        component = dep["metadata"]["labels"]["app.kubernetes.io/component"]
        (container,) = containers(dep)
        names = [e["name"] for e in container["env"]]
        assert len(names) == len(set(names)), f"duplicate env in {component}: {names}"
        env = literal_env(container)
        for name in env:
            if name.startswith("QE_"):
                assert _settings_path_exists(Settings, name[3:].split("__")), f"{name} is not a setting"
        for name in list(__import__("os").environ):
            if name.startswith(("QE_", "OTEL_")):
                monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = load_settings()
        assert settings.bus == "kafka"
        assert settings.kafka.bootstrap == env["QE_KAFKA__BOOTSTRAP"]
        if component in OPERATOR_TOOLS:
            continue  # the console and the notifier serve no gRPC port of their own
        assert settings.ports.of(component) == PORTS[component]
        assert str(settings.models_dir) == "/app/models"
        assert env["OTEL_SERVICE_NAME"] == component
        if component == "execution":
            assert settings.execution.venue == env["QE_EXECUTION__VENUE"]
            # SubmitOrder reaches risk through its Service.
            assert settings.execution.risk_address == f"{RELEASE}-risk:{PORTS['risk']}"
        if "QE_VAULT__ROLE" in env:
            from quantumedge.secrets.paths import vault_role

            assert settings.vault.auth_method == "kubernetes"
            venue = settings.execution.venue if component == "execution" else "paper"
            assert settings.vault.role_for(component) == vault_role(component, venue)
            assert settings.vault.kubernetes_jwt_file == "/var/run/secrets/vault/token"
        if component == "risk" and scenario == "all-features":
            assert settings.risk.limits.daily_loss_limit == 250
            assert settings.risk.limits.max_order_notional == 500
        if component == "ingest" and scenario == "dev":
            assert settings.ingest.source == "synthetic"


def test_service_accounts_bind_to_the_vault_roles_of_secrets_init(render) -> None:
    from quantumedge.secrets_cli import build_parser

    init = build_parser().parse_args(["init"])
    rendered = render(["full-values.yaml"])
    accounts = {sa["metadata"]["name"] for sa in rendered.of_kind("ServiceAccount")}
    expected = {init.kubernetes_service_account.format(service=c) for c in (*COMPONENTS, *OPERATOR_TOOLS)}
    assert accounts == expected
    for dep in pipeline(rendered.of_kind("Deployment")):
        component = dep["metadata"]["labels"]["app.kubernetes.io/component"]
        pod = dep["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == init.kubernetes_service_account.format(service=component)
        env = literal_env(pod["containers"][0])
        # Execution on testnet logs in as execution-testnet: the one role that reads the testnet key only.
        assert env["QE_VAULT__ROLE"] == ("execution-testnet" if component == "execution" else component)
        assert env["QE_VAULT__AUTH_METHOD"] == "kubernetes"
        (token,) = [v for v in pod["volumes"] if v["name"] == "vault-token"]
        source = token["projected"]["sources"][0]["serviceAccountToken"]
        assert source["audience"] == "vault" and source["expirationSeconds"] >= 600


def test_chart_topics_match_the_code(render) -> None:
    from quantumedge.shared import topics

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart_topics = {(t["name"], bool(t.get("compacted", False))) for t in values["kafka"]["topics"]["names"]}
    assert chart_topics == {(spec.name, spec.compacted) for spec in topics.ALL}
    strimzi = render(["full-values.yaml"]).of_kind("KafkaTopic")
    compacted = {t["spec"]["topicName"] for t in strimzi if t["spec"]["config"]["cleanup.policy"] == "compact"}
    assert compacted == {"prod-execution.state.v1", "prod-control.v1", "prod-risk.checkpoint.v1"}
    segments = {t["spec"]["topicName"]: t["spec"]["config"].get("segment.ms") for t in strimzi}
    assert segments == {f"prod-{s.name}": None if s.segment_ms is None else str(s.segment_ms) for s in topics.ALL}
    retention = {t["spec"]["topicName"]: t["spec"]["config"].get("retention.ms") for t in strimzi}
    assert retention["prod-audit.v1"] == str(topics.AUDIT_RETENTION_MS)


def test_risk_limit_names_in_the_schema_match_the_code() -> None:
    from quantumedge.risk.settings import LimitDefaults

    schema = json.loads((CHART / "values.schema.json").read_text())
    risk = schema["properties"]["components"]["properties"]["risk"]["properties"]["settings"]
    assert set(risk["properties"]["limits"]["properties"]) == set(LimitDefaults.model_fields)


def test_topic_job_is_a_hook_running_the_topics_command_of_the_same_image(render) -> None:
    from quantumedge.cli import _parser

    # The Job has no Kafka identity: it runs against PLAINTEXT development brokers (tests/chart/test_kafka_security.py).
    rendered = render(
        set_values=["kafka.securityProtocol=PLAINTEXT", "kafka.allowPlaintext=true", "kafka.topics.provisioner=job"]
    )
    (job,) = rendered.of_kind("Job")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    (container,) = containers(job)
    images = {containers(d)[0]["image"] for d in rendered.of_kind("Deployment")}
    assert images == {container["image"]}
    assert container["args"] == ["topics"]
    # `quantumedge topics` must exist: the Job runs it.
    assert _parser().parse_args(container["args"]).command == "topics"
    env = literal_env(container)
    assert env["QE_KAFKA__BOOTSTRAP"] == "kafka:9092" and env["QE_KAFKA__REPLICATION_FACTOR"] == "-1"


def test_notes_print_port_forward_and_grpcurl_for_every_service(render) -> None:
    notes = render().notes
    for component, port in PORTS.items():
        assert f"port-forward svc/{RELEASE}-{component} {port}:{port}" in notes
        assert f"grpcurl -plaintext localhost:{port} list" in notes
        assert f"localhost:{port} quantumedge.v1.{component.title()}Service/GetStatus" in notes
    assert "quantumedge.v1.IngestService/Subscribe" in notes
    assert "authorization: Bearer $QE_OPERATOR_TOKEN" in notes

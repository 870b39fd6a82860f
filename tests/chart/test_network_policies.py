"""The chart's NetworkPolicies, rendered by helm and evaluated by tests/chart/netpol.py: the default release
denies everything that its services do not need, and allows what they do.

Pods of the release carry the labels of their rendered pod templates; the other pods and addresses are the
ones a cluster typically has (brokers, Vault, the collector, DNS, an operator's shell, strangers). Outside
addresses come from the documentation ranges (RFC 5737): nothing ever connects to them.
"""

from __future__ import annotations

import pytest

from tests.chart import netpol
from tests.chart.chartlib import COMPONENTS, NAMESPACE, PORTS, RELEASE, HelmError
from tests.chart.netpol import Outside, Pod

INTERNET = Outside("203.0.113.10")
EXCHANGE = Outside("198.51.100.7")
PRIVATE = Outside("10.20.30.40")
BROKER = Pod("kafka-0", "kafka", {"strimzi.io/cluster": "kafka", "strimzi.io/kind": "Kafka"})
VAULT = Pod("vault-0", "vault", {"app.kubernetes.io/name": "vault"})
COLLECTOR = Pod("otel-collector", "observability", {"app.kubernetes.io/name": "opentelemetry-collector"})
DNS = Pod("coredns", "kube-system", {"k8s-app": "kube-dns"})
OPERATOR = Pod("grpcurl", "quantumedge-operators", {"app": "shell"})
NEIGHBOUR = Pod("other-app", NAMESPACE, {"app": "other"})  # another app in the release's namespace
STRANGER = Pod("curl", "default", {"app": "curl"})
COMPONENT = "app.kubernetes.io/component"


def _pods(rendered) -> dict[str, Pod]:
    """The release's pods as their templates label them: the four services and the topic Job."""
    pods = {}
    for obj in [*rendered.of_kind("Deployment"), *rendered.of_kind("Job")]:
        labels = obj["spec"]["template"]["metadata"]["labels"]
        pods[labels["app.kubernetes.io/component"]] = Pod(obj["metadata"]["name"], NAMESPACE, labels)
    return pods


def _release(render, *set_values: str) -> tuple[list, dict[str, Pod]]:
    rendered = render(set_values=list(set_values))
    return rendered.of_kind("NetworkPolicy"), _pods(rendered)


# The topic hook Job renders only against a PLAINTEXT development broker (it has no Kafka identity); the
# default release is SASL_SSL with Vault on, so the Job's policy is checked on that development shape.
PLAINTEXT_WITH_JOB = ("kafka.securityProtocol=PLAINTEXT", "kafka.allowPlaintext=true", "kafka.topics.provisioner=job")


@pytest.fixture(scope="module")
def default_release(render):
    return _release(render)


@pytest.fixture(scope="module")
def job_release(render):
    return _release(render, *PLAINTEXT_WITH_JOB)


@pytest.fixture(scope="module")
def release_of(default_release, job_release):
    """The release a component's pod is checked in: the default one, or the one with the topic Job."""
    return lambda component: job_release if component == "topics" else default_release


def test_the_default_release_renders_its_network_policies(default_release, job_release) -> None:
    for (policies, pods), extra in ((default_release, []), (job_release, ["topics"])):
        names = sorted(p["metadata"]["name"] for p in policies)
        expected = [f"{RELEASE}-default-deny", f"{RELEASE}-test", *(f"{RELEASE}-{c}" for c in [*COMPONENTS, *extra])]
        assert names == sorted(expected)
        assert set(pods) == {*COMPONENTS, *extra}
        # Every pod of the release is isolated both ways; nobody else in the namespace is.
        for pod in pods.values():
            assert netpol.isolated(policies, pod) == {"Ingress", "Egress"}, pod.name
        assert netpol.isolated(policies, NEIGHBOUR) == set()


@pytest.mark.parametrize(("source", "destination"), [
    ("inference", "execution"),  # a compromised model server must not place orders
    ("ingest", "execution"),
    ("risk", "execution"),
    ("inference", "risk"),
    ("ingest", "risk"),
    ("ingest", "inference"),
    ("topics", "risk"),
])  # fmt: skip
def test_service_to_service_grpc_is_denied_unless_the_code_calls_it(release_of, source, destination) -> None:
    policies, pods = release_of(source)
    assert not netpol.allowed(policies, pods[source], pods[destination], PORTS[destination])


def test_execution_reaches_risk_for_submit_order_and_nothing_else_does(default_release) -> None:
    policies, pods = default_release
    assert netpol.allowed(policies, pods["execution"], pods["risk"], PORTS["risk"])
    assert not netpol.allowed(policies, pods["execution"], pods["risk"], 8080)  # only the gRPC port


@pytest.mark.parametrize("component", COMPONENTS)
def test_operators_reach_every_grpc_port_strangers_none(default_release, component: str) -> None:
    policies, pods = default_release
    port = PORTS[component]
    assert netpol.allowed(policies, OPERATOR, pods[component], port)
    assert not netpol.allowed(policies, NEIGHBOUR, pods[component], port)
    assert not netpol.allowed(policies, STRANGER, pods[component], port)
    assert not netpol.allowed(policies, INTERNET, pods[component], port)


@pytest.mark.parametrize("component", [*COMPONENTS, "topics"])
def test_everyone_reaches_kafka_and_dns_in_the_cluster_only(release_of, component: str) -> None:
    policies, pods = release_of(component)
    pod = pods[component]
    assert netpol.allowed(policies, pod, BROKER, 9092) and netpol.allowed(policies, pod, BROKER, 9093)
    assert netpol.allowed(policies, pod, DNS, 53, "UDP") and netpol.allowed(policies, pod, DNS, 53, "TCP")
    assert not netpol.allowed(policies, pod, INTERNET, 9092), "Kafka by default means brokers in the cluster"
    assert not netpol.allowed(policies, pod, BROKER, 22)
    assert not netpol.allowed(policies, pod, STRANGER, 53, "UDP"), "DNS only to the cluster DNS"
    # Vault is on by default (Kafka credentials) for the services, never for the Job; the collector is off.
    assert netpol.allowed(policies, pod, VAULT, 8200) == (component != "topics")
    assert not netpol.allowed(policies, pod, COLLECTOR, 4317)


def test_only_ingest_reaches_the_internet_for_market_data(release_of) -> None:
    policies, pods = release_of("ingest")
    assert netpol.allowed(policies, pods["ingest"], INTERNET, 9443)
    assert netpol.allowed(policies, pods["ingest"], INTERNET, 443)
    assert not netpol.allowed(policies, pods["ingest"], PRIVATE, 9443), "not the private ranges"
    assert not netpol.allowed(policies, pods["ingest"], INTERNET, 80)
    for component in ("inference", "risk", "execution", "topics"):
        policies, pods = release_of(component)
        for port in (443, 9443, 80):
            assert not netpol.allowed(policies, pods[component], INTERNET, port), f"{component} -> internet:{port}"


def test_nothing_reaches_the_topic_job(job_release) -> None:
    policies, pods = job_release
    for source in (OPERATOR, NEIGHBOUR, *(pods[c] for c in COMPONENTS)):
        assert not netpol.allowed(policies, source, pods["topics"], 50051)


def test_execution_on_a_real_venue_reaches_the_configured_cidrs_only(render) -> None:
    policies, pods = _release(
        render,
        "components.execution.venue=testnet",
        "vault.enabled=true",
        "networkPolicy.egress.exchange.cidrs[0]=198.51.100.0/24",
    )
    execution = pods["execution"]
    assert netpol.allowed(policies, execution, EXCHANGE, 443) and netpol.allowed(policies, execution, EXCHANGE, 9443)
    assert not netpol.allowed(policies, execution, INTERNET, 443), "execution -> arbitrary internet"
    assert not netpol.allowed(policies, execution, EXCHANGE, 22)
    assert netpol.allowed(policies, execution, VAULT, 8200)  # its key comes from Vault
    assert not netpol.allowed(policies, pods["risk"], EXCHANGE, 443), "only execution talks to the order API"


def test_a_real_venue_without_exchange_cidrs_fails_at_render_time(render) -> None:
    with pytest.raises(HelmError) as err:
        _release(render, "components.execution.venue=live", "components.execution.allowLive=true", "vault.enabled=true")
    assert "networkPolicy.egress.exchange.cidrs" in err.value.stderr


def test_a_disabled_caller_opens_nothing(render) -> None:
    policies, pods = _release(render, "components.execution.enabled=false")
    risk = next(p for p in policies if p["metadata"]["name"] == f"{RELEASE}-risk")
    peers = risk["spec"]["ingress"][0]["from"]
    callers = [p for p in peers if "podSelector" in p and p["podSelector"]["matchLabels"].get(COMPONENT) != "test"]
    assert callers == [], "no caller left, no pod selector (but the helm test hook's)"
    assert netpol.allowed(policies, OPERATOR, pods["risk"], PORTS["risk"])


def test_selectors_and_cidrs_come_from_values(render) -> None:
    policies, pods = _release(
        render,
        "networkPolicy.egress.kafka.to[0].ipBlock.cidr=192.0.2.0/28",  # a managed Kafka outside the cluster
        "networkPolicy.operatorNamespaceSelector.matchLabels.team=trading",
    )
    managed_kafka = Outside("192.0.2.5")
    assert netpol.allowed(policies, pods["risk"], managed_kafka, 9093)
    assert not netpol.allowed(policies, pods["risk"], BROKER, 9092), "the in-cluster default was replaced"
    console = Pod("console", "consoles", {"app": "ui"}, {"team": "trading"})
    assert not netpol.allowed(policies, console, pods["risk"], PORTS["risk"])  # both labels must match
    both = Pod("console", "quantumedge-operators", {"app": "ui"}, {"team": "trading"})
    assert netpol.allowed(policies, both, pods["risk"], PORTS["risk"])


def test_disabling_network_policies_renders_none(render) -> None:
    assert render(set_values=["networkPolicy.enabled=false"]).of_kind("NetworkPolicy") == []


# ---- the evaluator itself, on hand-written policies whose meaning the Kubernetes docs state ----------------


def _policy(namespace: str, spec: dict) -> dict:
    return {"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": namespace}, "spec": spec}


def test_evaluator_follows_the_documented_semantics() -> None:
    web = Pod("web", "prod", {"app": "web"})
    db = Pod("db", "prod", {"app": "db"})
    ops = Pod("ops", "ops", {"app": "shell"}, {"team": "ops"})
    other = Pod("x", "dev", {"app": "web"})
    # No policy: everything allowed.
    assert netpol.allowed([], web, db, 5432) and netpol.allowed([], web, INTERNET, 443)
    # policyTypes defaults to Ingress only: db isolated for ingress, egress untouched.
    deny_in = _policy("prod", {"podSelector": {"matchLabels": {"app": "db"}}})
    assert not netpol.allowed([deny_in], web, db, 5432) and netpol.allowed([deny_in], db, INTERNET, 443)
    # podSelector alone = same namespace; AND within one peer, OR across peers; ports and ranges.
    allow = _policy("prod", {
        "podSelector": {"matchLabels": {"app": "db"}},
        "ingress": [{
            "from": [
                {"podSelector": {"matchLabels": {"app": "web"}}},
                {"namespaceSelector": {"matchLabels": {"team": "ops"}},
                 "podSelector": {"matchLabels": {"app": "shell"}}},
            ],
            "ports": [{"port": 5432}, {"port": 6000, "endPort": 6010, "protocol": "UDP"}],
        }],
    })  # fmt: skip
    assert netpol.allowed([deny_in, allow], web, db, 5432)
    assert not netpol.allowed([deny_in, allow], other, db, 5432), "same labels, other namespace"
    assert netpol.allowed([deny_in, allow], ops, db, 6005, "UDP") and not netpol.allowed([allow], ops, db, 6005)
    assert not netpol.allowed([allow], Pod("y", "ops", {"app": "db"}, {"team": "ops"}), db, 5432)
    # Egress: ipBlock with except; a rule without `to` allows every destination on its ports.
    egress = _policy("prod", {
        "podSelector": {"matchLabels": {"app": "web"}},
        "policyTypes": ["Egress"],
        "egress": [
            {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}], "ports": [{"port": 443}]},
            {"ports": [{"port": 53, "protocol": "UDP"}]},
        ],
    })  # fmt: skip
    assert netpol.allowed([egress], web, INTERNET, 443) and not netpol.allowed([egress], web, PRIVATE, 443)
    assert netpol.allowed([egress], web, db, 53, "UDP") and not netpol.allowed([egress], web, db, 5432)
    assert not netpol.allowed([egress], web, db, 443), "ipBlock never matches a pod here"
    # matchExpressions.
    assert netpol.selector_matches(
        {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}, web.labels
    )
    assert not netpol.selector_matches({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, web.labels)


PROMETHEUS = Pod("prometheus-0", "monitoring", {"app.kubernetes.io/name": "prometheus"})


@pytest.mark.parametrize("component", COMPONENTS)
def test_prometheus_scrapes_the_metrics_port_and_nothing_else(default_release, component: str) -> None:
    policies, pods = default_release
    assert netpol.allowed(policies, PROMETHEUS, pods[component], 9464)
    assert not netpol.allowed(policies, PROMETHEUS, pods[component], PORTS[component]), "metrics only, not gRPC"
    assert not netpol.allowed(policies, STRANGER, pods[component], 9464)
    assert not netpol.allowed(policies, OPERATOR, pods[component], 9464)


def test_the_console_reaches_every_service_and_only_operators_reach_the_console(render) -> None:
    policies, pods = _release(render, "console.enabled=true", "notify.enabled=true")
    console, notify = pods["console"], pods["notify"]
    for component in COMPONENTS:
        assert netpol.allowed(policies, console, pods[component], PORTS[component])
        assert not netpol.allowed(policies, notify, pods[component], PORTS[component]), "the notifier calls no RPC"
    assert netpol.allowed(policies, OPERATOR, console, 8080)
    assert not netpol.allowed(policies, STRANGER, console, 8080) and not netpol.allowed(
        policies, INTERNET, console, 8080
    )
    assert not netpol.allowed(policies, console, INTERNET, 443), "the console never leaves the cluster"
    # The notifier reaches its endpoints on 443 and Kafka; nothing reaches it but a metrics scrape.
    assert netpol.allowed(policies, notify, INTERNET, 443) and netpol.allowed(policies, notify, BROKER, 9092)
    assert netpol.allowed(policies, PROMETHEUS, notify, 9464) and not netpol.allowed(policies, OPERATOR, notify, 9464)
    for pod in (console, notify):
        assert netpol.isolated(policies, pod) == {"Ingress", "Egress"}


def test_the_helm_test_hook_pod_reaches_each_services_grpc_port_and_nothing_else(render) -> None:
    rendered = render()
    policies, pods = rendered.of_kind("NetworkPolicy"), _pods(rendered)
    (hook,) = rendered.of_kind("Pod")
    assert hook["metadata"]["labels"][COMPONENT] == "test"
    tester = Pod(hook["metadata"]["name"], NAMESPACE, hook["metadata"]["labels"])
    assert netpol.isolated(policies, tester) == {"Ingress", "Egress"}
    for component in COMPONENTS:
        assert netpol.allowed(policies, tester, pods[component], PORTS[component]), component
        assert not netpol.allowed(policies, pods[component], tester, PORTS[component]), component
    for outside, port in ((BROKER, 9092), (VAULT, 8200), (INTERNET, 443), (EXCHANGE, 443)):
        assert not netpol.allowed(policies, tester, outside, port)

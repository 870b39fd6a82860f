"""The shell commands of the README's Kubernetes section and of docs/kubernetes.md, and what exercises each.

`make test` checks that every documented command is listed here (so a new one cannot slip in untested);
`make cluster-test` runs the ones marked CLUSTER against its real API server, word for word.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.chart.chartlib import REPO_ROOT

README = REPO_ROOT / "README.md"
KUBERNETES_DOC = REPO_ROOT / "docs" / "kubernetes.md"

CLUSTER = "make cluster-test runs it on the real API server (tests/cluster/test_documented_commands.py)"
IMAGE = "make image-test"
SWEEP = "make cluster-test runs it on the real API server (tests/cluster/test_sweep_release.py)"
# Command prefix -> what exercises it, or why nothing can on this kind of machine ("cannot:" ...).
EXERCISED: dict[str, str] = {
    "make image-test": IMAGE,
    "make cluster-test": "make cluster-test itself (tests/cluster)",
    "make image": f"{IMAGE} depends on it (and runs the image it builds)",
    "docker run --rm quantumedge:0.1.0 --help": f"{IMAGE} (test_image_runs_as_the_chart_runs_it)",
    # The development installs (dev values; the same Vault-less PLAINTEXT shape by --set) and the secured
    # default (SASL_SSL, credentials from Vault): kwok runs no container, so the secured release installs and
    # passes its hooks without a Vault or a broker; the cluster test checks each release's shape instead.
    "helm install qe charts/quantumedge -n quantumedge --create-namespace -f charts/quantumedge/ci/dev-values.yaml": (
        CLUSTER
    ),
    "helm install qe charts/quantumedge -n quantumedge --create-namespace --set vault.enabled=false "
    "--set kafka.securityProtocol=PLAINTEXT --set kafka.allowPlaintext=true --set kafka.topics.provisioner=job": (
        CLUSTER
    ),
    "helm install qe charts/quantumedge -n quantumedge --create-namespace --set kafka.bootstrap=my-kafka:9093 "
    "--set vault.addr=": CLUSTER,
    "helm test qe -n quantumedge": CLUSTER,
    'eval "$(quantumedge secrets signing-keygen)"': CLUSTER,
    "kubectl -n quantumedge create secret generic qe-quantumedge-signing": CLUSTER,
    "kubectl -n quantumedge create secret generic qe-quantumedge-operator-token": CLUSTER,
    "helm upgrade qe charts/quantumedge -n quantumedge --reuse-values": CLUSTER,
    "kubectl label namespace quantumedge pod-security.kubernetes.io/enforce=restricted": CLUSTER,
    "helm install sweep-tp-sl charts/quantumedge -n backtests --create-namespace -f "
    "charts/quantumedge/ci/sweep-values.yaml": SWEEP,
    "helm uninstall sweep-tp-sl -n backtests": SWEEP,
    "kubectl -n backtests logs -f job/sweep-tp-sl-quantumedge-tp-sl-merge": (
        "cannot: kwok runs no container, so no pod writes a log (the merge itself is tests/unit/backtest/test_sweep.py)"
    ),
    "make chart-test": "make test runs it",
    ".venv/bin/python -m pytest tests/chart": "make test runs it (make chart-test)",
    "python tools/chart_tools.py ensure": "make chart-test runs it first (tests/chart/conftest.py)",
    ".venv/bin/uv pip compile": "make lock runs it; test_dockerfile checks the lock it wrote (pins, hashes)",
    "helm install qe charts/quantumedge -n quantumedge --create-namespace --set "
    "kafka.bootstrap=kafka-kafka-bootstrap.kafka.svc:9093 --set vault.addr=https://vault.vault.svc:8200 "
    "--set image.repository=registry.example.com": (
        "cannot: it installs registry.example.com's image (the same command with the local image runs in "
        "make cluster-test)"
    ),
    "kind ": "cannot: kind's node image, kindnetd and control-plane images come from registries",
    "minikube ": "cannot: minikube's kicbase image and ISO come from the internet",
    "skaffold ": "cannot: skaffold's Go module is refused by the Go proxy (skaffold.yaml is checked by test_skaffold)",
    "docker tag quantumedge:0.1.0 registry.example.com": "cannot: no registry is reachable",
    "docker push registry.example.com": "cannot: no registry is reachable",
    "kubectl create namespace kafka": "cannot: part of Strimzi's quick start, which is fetched from strimzi.io",
    "kubectl -n kafka apply -f": "cannot: Strimzi's install manifests are fetched from strimzi.io",
    "kubectl -n kafka wait kafka/my-cluster": "cannot: needs Strimzi's operator running a Kafka in pods",
}


def _blocks(markdown: str) -> list[str]:
    """Fenced sh blocks, also the ones indented inside list items."""
    return [
        re.sub(r"^ {0,4}", "", b, flags=re.MULTILINE)
        for b in re.findall(r"^ *```sh\n(.*?)^ *```", markdown, re.M | re.S)
    ]


def commands(markdown: str) -> list[str]:
    out = []
    for block in _blocks(markdown):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()  # a trailing comment
            if line and not line.startswith("#"):
                out.append(re.sub(r"\s+", " ", line))
    return out


def readme_kubernetes_section() -> str:
    text = README.read_text()
    start = text.index("## Kubernetes\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def documented() -> list[tuple[str, str]]:
    """(source, command) for every command of the two places."""
    found = [("README.md#kubernetes", c) for c in commands(readme_kubernetes_section())]
    return found + [("docs/kubernetes.md", c) for c in commands(Path(KUBERNETES_DOC).read_text())]


def exercised_by(command: str) -> str | None:
    matches = [prefix for prefix in EXERCISED if command.startswith(prefix)]
    return EXERCISED[max(matches, key=len)] if matches else None

"""Helpers shared by the chart tests: paths, the chart's fixed names, and running helm."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "quantumedge"
CI_VALUES = CHART / "ci"
RELEASE = "quantumedge"
NAMESPACE = "quantumedge"
COMPONENTS = ("ingest", "inference", "risk", "execution")
PORTS = {"ingest": 50051, "inference": 50052, "risk": 50053, "execution": 50054}
# A Vault-less release is the PLAINTEXT development shape: the chart's defaults are SASL_SSL with each
# component's Kafka credentials from Vault, and it refuses vault.enabled=false on a secured protocol and the
# topic Job (no Kafka identity) on anything but PLAINTEXT. Tests of Vault-less behaviour render this shape.
DEV_SHAPE = (
    "vault.enabled=false",
    "kafka.securityProtocol=PLAINTEXT",
    "kafka.allowPlaintext=true",
    "kafka.topics.provisioner=job",
)


@dataclass(frozen=True)
class Rendered:
    objects: list[dict]
    notes: str

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]

    def named(self, kind: str, name: str) -> dict:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def component(self, kind: str, component: str) -> list[dict]:
        return [
            o
            for o in self.of_kind(kind)
            if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
        ]


class HelmError(AssertionError):
    def __init__(self, args: Sequence[str], result: subprocess.CompletedProcess) -> None:
        self.stderr = result.stderr
        super().__init__(f"helm {' '.join(args)} failed (exit {result.returncode}):\n{result.stderr.strip()}")


def _helm_env() -> dict[str, str]:
    # Hermetic: helm's own state under .cache, and no kubeconfig, so no test can ever reach a real cluster.
    state = REPO_ROOT / ".cache" / "helm"
    return {
        **os.environ,
        "HELM_CACHE_HOME": str(state / "cache"),
        "HELM_CONFIG_HOME": str(state / "config"),
        "HELM_DATA_HOME": str(state / "data"),
        "KUBECONFIG": str(state / "no-kubeconfig"),
    }


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(helm), *args], capture_output=True, text=True, check=False, cwd=REPO_ROOT, env=_helm_env()
    )
    if result.returncode != 0:
        raise HelmError(args, result)
    return result


def values_args(values_files: Sequence[str | Path] = (), set_values: Sequence[str] = ()) -> list[str]:
    args: list[str] = []
    for f in values_files:
        path = Path(f)
        args += ["-f", str(path if path.is_absolute() else CI_VALUES / path)]
    for s in set_values:
        args += ["--set", s]
    return args

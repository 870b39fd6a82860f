"""values.schema.json (and the chart's own checks) turn a wrong value into an install-time error that names it."""

from __future__ import annotations

import pytest

from tests.chart.chartlib import CHART, HelmError, run_helm, values_args

REJECTED = {
    "unknown venue": (["components.execution.venue=moon"], "venue"),
    "wrong type": (["components.inference.replicaCount=two"], "replicaCount"),
    "unknown top-level key": (["replicas=3"], "replicas"),
    "unknown component key": (["components.risk.replica=2"], "replica"),
    "live without vault": (
        [
            "components.execution.venue=live",
            "components.execution.allowLive=true",
            "vault.enabled=false",
            "kafka.securityProtocol=PLAINTEXT",
            "kafka.allowPlaintext=true",
        ],
        "enabled",
    ),
    "live without the second switch": (["components.execution.venue=live", "vault.enabled=true"], "allowLive"),
    "unknown autoscaling mode": (["components.risk.autoscaling.mode=both"], "mode"),
    "execution is a single writer": (["components.execution.autoscaling.mode=hpa"], "single writer"),
    "ingest is a single writer": (["components.ingest.replicaCount=2"], "single writer"),
    "risk is a single writer": (["components.risk.autoscaling.mode=keda"], "single writer"),
    "risk never runs twice": (["components.risk.replicaCount=2"], "single writer"),
    "hpa cannot scale to zero": (
        ["components.inference.autoscaling.mode=hpa", "components.inference.autoscaling.minReplicas=0"],
        "minReplicas",
    ),
    "unknown risk limit": (["components.risk.settings.limits.daily_loss=5"], "daily_loss"),
    "risk limit of the wrong type": (["components.risk.settings.limits.daily_loss_limit=lots"], "daily_loss_limit"),
    "unknown ingest source": (["components.ingest.settings.source=csv"], "source"),
    "writable root filesystem": (["default.containerSecurityContext.readOnlyRootFilesystem=false"], "readOnly"),
    "privileged container": (["components.execution.containerSecurityContext.privileged=true"], "privileged"),
    "running as root": (["default.podSecurityContext.runAsNonRoot=false"], "runAsNonRoot"),
    "literal secret in env": (
        ["default.env[0].name=QE_EXCHANGE_API_SECRET", "default.env[0].value=abc"],
        "env",
    ),
    "secret-looking setting": (["components.execution.settings.api_secret=abc"], "api_secret"),
    "setting that has a value of its own": (["config.settings.log_level=DEBUG"], "log_level"),
    "venue through the settings pass-through": (["components.execution.settings.venue=live"], "venue"),
    "empty kafka bootstrap": (["kafka.bootstrap="], "bootstrap"),
    "bad image digest": (["image.digest=latest"], "digest"),
    "unknown topic provisioner": (["kafka.topics.provisioner=manual"], "provisioner"),
    "unknown vault auth method": (["vault.authMethod=token"], "authMethod"),
    "bad symbol": (["config.symbols={btc-usdt}"], "symbols"),
    "pdb with both bounds": (["default.pdb.minAvailable=1"], "pdb"),
    "real venue without exchange CIDRs": (
        ["components.execution.venue=testnet", "vault.enabled=true"],
        "networkPolicy.egress.exchange.cidrs",
    ),
    "exchange CIDR that is a name": (["networkPolicy.egress.exchange.cidrs[0]=api.binance.com"], "cidrs"),
    "kafka egress to anywhere by omission": (["networkPolicy.egress.kafka.to={}"], "kafka/to"),
    "vault egress to anywhere by omission": (["networkPolicy.egress.vault.to={}"], "vault/to"),
}

ACCEPTED = {
    "live with vault and both switches": [
        "components.execution.venue=live",
        "components.execution.allowLive=true",
        "vault.enabled=true",
        "networkPolicy.egress.exchange.cidrs[0]=198.51.100.0/24",
    ],
    "testnet with vault": [
        "components.execution.venue=testnet",
        "vault.enabled=true",
        "networkPolicy.egress.exchange.cidrs[0]=198.51.100.0/24",
    ],
    "testnet without network policies": [
        "components.execution.venue=testnet",
        "vault.enabled=true",
        "networkPolicy.enabled=false",
    ],
    "secret referenced from a Secret": [
        "default.env[0].name=QE_EXCHANGE_API_SECRET",
        "default.env[0].valueFrom.secretKeyRef.name=exchange",
        "default.env[0].valueFrom.secretKeyRef.key=secret",
    ],
    "keda scales to zero": [
        "components.inference.autoscaling.mode=keda",
        "components.inference.autoscaling.minReplicas=0",
    ],
    "pdb by minAvailable": ["default.pdb.minAvailable=1", "default.pdb.maxUnavailable=null"],
    "component overrides a default with false": ["components.risk.pdb.create=false"],
}


@pytest.mark.parametrize("case", REJECTED)
def test_wrong_values_fail_at_render_time(tools, case: str) -> None:
    set_values, mentioned = REJECTED[case]
    with pytest.raises(HelmError) as failure:
        run_helm(tools.helm, "template", "quantumedge", str(CHART), *values_args(set_values=set_values))
    assert mentioned in failure.value.stderr


@pytest.mark.parametrize("case", ACCEPTED)
def test_right_values_render(render, case: str) -> None:
    assert render(set_values=ACCEPTED[case]).of_kind("Deployment")


def test_component_false_overrides_default_true(render) -> None:
    # sprig's mergeOverwrite would drop an explicit false; the chart's own deep merge keeps it.
    rendered = render(set_values=ACCEPTED["component overrides a default with false"])
    assert rendered.component("PodDisruptionBudget", "risk") == []
    assert len(rendered.of_kind("PodDisruptionBudget")) == 3


def test_values_file_documents_every_leaf() -> None:
    """Every value is documented with `## @param` (bitnami readme-generator style)."""
    import yaml

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = {
        line.split()[2]
        for line in (CHART / "values.yaml").read_text().splitlines()
        if line.strip().startswith("## @param")
    }

    def leaves(node, prefix=""):
        if (
            isinstance(node, dict)
            and node
            and not prefix.endswith(
                (
                    "resources",
                    "SecurityContext",
                    "operatorNamespaceSelector",
                    "dataVolume",
                    "strategy",
                    "settings",
                )
            )
        ):
            for key, value in node.items():
                yield from leaves(value, f"{prefix}.{key}" if prefix else key)
        else:
            yield prefix

    undocumented = [path for path in leaves(values) if path not in documented]
    assert undocumented == []

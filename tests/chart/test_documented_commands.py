"""Every command the README's Kubernetes section and docs/kubernetes.md show is exercised by a make target or
a test, or says why nothing on this kind of machine can run it (tests/chart/doccommands.py)."""

from __future__ import annotations

from tests.chart.doccommands import CLUSTER, EXERCISED, documented, exercised_by


def test_every_documented_kubernetes_command_is_exercised_or_explained() -> None:
    found = documented()
    assert len(found) >= 15
    unlisted = [f"{source}: {command}" for source, command in found if exercised_by(command) is None]
    assert not unlisted, "add these to tests/chart/doccommands.py EXERCISED (and exercise them):\n" + "\n".join(
        unlisted
    )


def test_the_install_sequence_of_the_readme_runs_on_the_cluster() -> None:
    readme = [c for source, c in documented() if source == "README.md#kubernetes"]
    install = [c for c in readme if c.startswith("helm install")]
    assert install and all(exercised_by(c) == CLUSTER for c in install)
    assert any("image.repository=quantumedge" in c and "image.tag=0.1.0" in c for c in install)
    # A development install (the Vault-less PLAINTEXT dev values) and the secured default (Vault, SASL_SSL).
    assert any("ci/dev-values.yaml" in c for c in install)
    assert any("vault.addr=" in c and "vault.enabled=false" not in c and "-f " not in c for c in install)
    # Without Vault risk and execution start only once they have the signing keys: the README gives them.
    upgrades = [c for c in readme if c.startswith("helm upgrade")]
    assert any("signing.privateKeySecret=" in c and "signing.publicKeys=" in c for c in upgrades)
    assert exercised_by("helm test qe -n quantumedge") == CLUSTER
    # What cannot run here says so, with its reason.
    assert all(v.startswith("cannot: ") or "make" in v for v in EXERCISED.values())

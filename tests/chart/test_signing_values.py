"""Without Vault, the chart hands risk its signing key from a Secret (never a literal) and the public keys to
risk and execution; with Vault it hands them nothing (the keyring is read from Vault)."""

from __future__ import annotations

import pytest

from quantumedge.shared.signing import SigningKey
from tests.chart.chartlib import CHART, DEV_SHAPE, HelmError, run_helm, values_args

KEY = SigningKey.generate("chart-1")
PUBLIC = f"chart-1:{KEY.public_b64()}"


def _env(render, set_values: list[str]) -> dict[str, list[dict]]:
    out = {}
    for dep in render(set_values=set_values).of_kind("Deployment"):
        (container,) = dep["spec"]["template"]["spec"]["containers"]
        out[dep["metadata"]["labels"]["app.kubernetes.io/component"]] = container["env"]
    return out


def _signing(env: list[dict]) -> dict[str, dict]:
    return {e["name"]: e for e in env if e["name"].startswith("QE_SIGNING__")}


def test_without_vault_risk_gets_its_key_from_a_secret_and_execution_only_the_public_half(render) -> None:
    env = _env(render, [*DEV_SHAPE, f"signing.publicKeys={PUBLIC}", "signing.privateKeySecret=qe-signing"])
    risk, execution = _signing(env["risk"]), _signing(env["execution"])
    assert risk["QE_SIGNING__PRIVATE_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "qe-signing", "key": "private-key"}
    assert "value" not in risk["QE_SIGNING__PRIVATE_KEY"] and risk["QE_SIGNING__ALLOW_ENV_KEY"]["value"] == "true"
    assert risk["QE_SIGNING__PUBLIC_KEYS"]["value"] == execution["QE_SIGNING__PUBLIC_KEYS"]["value"] == PUBLIC
    assert set(execution) == {"QE_SIGNING__PUBLIC_KEYS"}
    assert _signing(env["ingest"]) == _signing(env["inference"]) == {}


@pytest.mark.parametrize("explicit", [[], ["vault.enabled=true"]], ids=["default", "vault.enabled=true"])
def test_with_vault_the_keyring_comes_from_vault(render, explicit: list[str]) -> None:
    env = _env(render, [f"signing.publicKeys={PUBLIC}", "signing.privateKeySecret=qe-signing", *explicit])
    assert all(_signing(e) == {} for e in env.values())


def test_the_notes_say_how_to_give_a_vault_less_release_its_keys(render) -> None:
    assert "signing-keygen" in render(set_values=DEV_SHAPE).notes
    given = [*DEV_SHAPE, f"signing.publicKeys={PUBLIC}", "signing.privateKeySecret=qe-signing"]
    assert "signing-keygen" not in render(set_values=given).notes
    assert "signing-keygen" not in render().notes  # the default reads the keyring from Vault


@pytest.mark.parametrize(
    "bad", ["signing.publicKeys=not-a-key", "signing.privateKeySecret=Not_A_Name", "config.settings.signing.x=1"]
)
def test_malformed_signing_values_are_refused(tools, bad: str) -> None:
    with pytest.raises(HelmError) as failure:
        run_helm(tools.helm, "template", "quantumedge", str(CHART), *values_args(set_values=[bad]))
    assert "signing" in failure.value.stderr

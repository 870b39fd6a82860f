"""The HCL policies in deploy/vault/policies are least privilege and match quantumedge.secrets.paths."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from quantumedge.secrets import paths
from quantumedge.secrets.cli import DEFAULT_POLICIES_DIR, render_policy
from quantumedge.secrets.settings import VaultSettings

_BLOCK = re.compile(r'path\s+"([^"]+)"\s*\{\s*capabilities\s*=\s*\[([^\]]*)\]\s*\}', re.S)


def _grants(role: str) -> dict[str, set[str]]:
    text = (DEFAULT_POLICIES_DIR / f"{role}.hcl").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    blocks = {p: {c.strip().strip('"') for c in caps.split(",") if c.strip()} for p, caps in _BLOCK.findall(body)}
    # Every path block parsed: nothing hides behind syntax the regex does not understand.
    assert len(blocks) == body.count('path "'), f"{role}.hcl has a block this test cannot parse"
    return blocks


def _readable(role: str) -> set[str]:
    return {p for p, caps in _grants(role).items() if "read" in caps}


def test_one_policy_file_per_role() -> None:
    assert sorted(p.stem for p in Path(DEFAULT_POLICIES_DIR).glob("*.hcl")) == sorted(paths.ALL_ROLES)


@pytest.mark.parametrize("role", paths.SERVICE_ROLES)
def test_each_service_reads_exactly_what_paths_py_says(role: str) -> None:
    expected = set(paths.readable_paths(role))
    if role in paths.OPERATOR_HASH_READERS:
        expected.add(VaultSettings().operator_token_path)
    readable = _readable(role)
    assert {p.removeprefix("secret/data/") for p in readable if p.startswith("secret/data/")} == expected
    assert {p.removeprefix("secret/metadata/") for p in readable if p.startswith("secret/metadata/")} == expected
    assert all("*" not in p and "+" not in p for p in readable), "service policies name exact paths"
    for caps in _grants(role).values():
        assert caps == {"read"}, "services only read"


def test_only_execution_reads_exchange_keys() -> None:
    for role in paths.ALL_ROLES:
        # Values live under secret/data/; metadata (versions) reveals no key material.
        values = {p for p in _readable(role) if p.startswith("secret/data/")}
        exchange = {p for p in values if "/exchange/" in p or p.endswith("quantumedge/*")}
        assert bool(exchange) == (role == "execution"), role


def test_operator_writes_but_never_reads_keys_back() -> None:
    grants = _grants("operator")
    assert grants["secret/data/quantumedge/*"] == {"create", "update", "patch"}
    assert "read" not in grants["secret/data/quantumedge/*"]
    assert not any(p.startswith("sys/") for p in grants), "bootstrap needs an admin token, not the operator policy"


def test_policies_are_rewritten_for_other_mounts() -> None:
    text = (DEFAULT_POLICIES_DIR / "operator.hcl").read_text()
    out = render_policy(text, VaultSettings(kv_mount="kv-qe", approle_mount="ar"))
    assert '"kv-qe/data/quantumedge/*"' in out and '"auth/ar/role/+/role-id"' in out
    assert '"secret/' not in out and '"auth/approle/' not in out

"""The HCL policies in deploy/vault/policies are least privilege and match quantumedge.secrets.paths."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from quantumedge.secrets import paths
from quantumedge.secrets.settings import VaultSettings
from quantumedge.secrets_cli import DEFAULT_POLICIES_DIR, render_policy

_BLOCK = re.compile(r'path\s+"([^"]+)"\s*\{\s*capabilities\s*=\s*\[([^\]]*)\]\s*\}', re.S)


def _policy(name: str) -> dict[str, set[str]]:
    text = (DEFAULT_POLICIES_DIR / f"{name}.hcl").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    blocks = {p: {c.strip().strip('"') for c in caps.split(",") if c.strip()} for p, caps in _BLOCK.findall(body)}
    # Every path block parsed: nothing hides behind syntax the regex does not understand.
    assert len(blocks) == body.count('path "'), f"{name}.hcl has a block this test cannot parse"
    return blocks


def _grants(role: str) -> dict[str, set[str]]:
    """What a token of `role` may do: the union of the policies init attaches to it."""
    out: dict[str, set[str]] = {}
    for name in paths.policies_of(role):
        for path, caps in _policy(name).items():
            out.setdefault(path, set()).update(caps)
    return out


def _readable(role: str) -> set[str]:
    return {p for p, caps in _grants(role).items() if "read" in caps and "deny" not in caps}


def test_one_policy_file_per_role() -> None:
    assert sorted(p.stem for p in Path(DEFAULT_POLICIES_DIR).glob("*.hcl")) == sorted(paths.ALL_ROLES)


@pytest.mark.parametrize("role", paths.VAULT_ROLES)
def test_each_service_role_reads_exactly_what_paths_py_says(role: str) -> None:
    expected = set(paths.readable_paths(role))
    if paths.service_of(role) in paths.OPERATOR_HASH_READERS:
        expected.add(VaultSettings().operator_token_path)
    readable = _readable(role)
    data = expected | set(paths.lease_paths(role))
    assert {p.removeprefix("secret/data/") for p in readable if p.startswith("secret/data/")} == data
    assert {p.removeprefix("secret/metadata/") for p in readable if p.startswith("secret/metadata/")} == expected
    assert all("*" not in p and "+" not in p for p in readable), "service policies name exact paths"
    leases = {f"secret/data/{p}" for p in paths.lease_paths(role)}
    for path, caps in _grants(role).items():
        # The one write a service has: execution's own lease record (check-and-set, never a secret).
        assert caps == ({"create", "read", "update"} if path in leases else {"read"}), "services only read"


def test_only_the_venue_roles_read_exchange_keys_and_never_both() -> None:
    keys = {f"secret/data/{paths.EXCHANGE_TESTNET}": "testnet", f"secret/data/{paths.EXCHANGE_LIVE}": "live"}
    for role in paths.ALL_ROLES:
        # Values live under secret/data/; metadata (versions) reveals no key material.
        values = {p for p in _readable(role) if p.startswith("secret/data/")}
        assert not any(p.endswith("quantumedge/*") or p.endswith("exchange/*") for p in values), role
        venues = {keys[p] for p in values if p in keys}
        assert venues == ({paths.venue_of_role(role)} if role in paths.EXECUTION_VENUE_ROLES else set()), role
    # Paper execution (the base policy) reads no key at all.
    assert paths.vault_role("execution", "paper") == "execution"
    assert [paths.vault_role("execution", v) for v in ("testnet", "live")] == ["execution-testnet", "execution-live"]


def test_operator_writes_but_never_reads_keys_back() -> None:
    grants = _grants("operator")
    assert grants["secret/data/quantumedge/*"] == {"create", "update", "patch"}
    assert "read" not in grants["secret/data/quantumedge/*"]
    assert not any(p.startswith("sys/") for p in grants), "bootstrap needs an admin token, not the operator policy"


def test_operator_can_never_act_as_a_service() -> None:
    """No role-id reads, no secret-id minting, no role changes: denied outright, whatever else is attached."""
    grants = _grants("operator")
    assert grants["auth/approle/role/*"] == {"deny"}
    assert grants["auth/kubernetes/role/*"] == {"deny"}
    allowed = [p for p, caps in grants.items() if p.startswith("auth/") and caps != {"deny"}]
    assert allowed == []


def test_policies_are_rewritten_for_other_mounts() -> None:
    text = (DEFAULT_POLICIES_DIR / "operator.hcl").read_text()
    out = render_policy(text, VaultSettings(kv_mount="kv-qe", approle_mount="ar"))
    assert '"kv-qe/data/quantumedge/*"' in out and '"auth/ar/role/*"' in out
    assert '"secret/' not in out and '"auth/approle/' not in out

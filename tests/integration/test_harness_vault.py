"""The Vault test harness gives a real Vault-API server that hvac talks to: KV v2 and token lifecycles.

Real server (env server, testcontainers' Vault, or OpenBao's dev server), real hvac client.
"""

from __future__ import annotations

import uuid

import hvac
import pytest
from hvac.exceptions import Forbidden, InvalidRequest

from tests.harness import LocalVault, VaultEndpoint

pytestmark = pytest.mark.integration


@pytest.fixture
def root(vault: VaultEndpoint) -> hvac.Client:
    client = hvac.Client(url=vault.addr, token=vault.token, timeout=10)
    assert client.is_authenticated()
    return client


def test_kv_v2_write_read_and_versions(root: hvac.Client) -> None:
    path = f"qe-harness/{uuid.uuid4().hex}"
    root.secrets.kv.v2.create_or_update_secret(
        path=path,
        secret={"api_key": "k1", "n": "1"},  # pragma: allowlist secret
        mount_point="secret",
    )
    root.secrets.kv.v2.create_or_update_secret(
        path=path,
        secret={"api_key": "k2", "n": "2"},  # pragma: allowlist secret
        mount_point="secret",
    )

    latest = root.secrets.kv.v2.read_secret_version(path=path, mount_point="secret", raise_on_deleted_version=True)
    assert latest["data"]["data"] == {"api_key": "k2", "n": "2"}  # pragma: allowlist secret
    assert latest["data"]["metadata"]["version"] == 2
    first = root.secrets.kv.v2.read_secret_version(
        path=path, version=1, mount_point="secret", raise_on_deleted_version=True
    )
    assert first["data"]["data"] == {"api_key": "k1", "n": "1"}  # pragma: allowlist secret

    root.secrets.kv.v2.delete_metadata_and_all_versions(path=path, mount_point="secret")


def test_short_ttl_token_renews_and_revoked_token_is_refused(root: hvac.Client, vault: VaultEndpoint) -> None:
    created = root.auth.token.create(policies=["default"], ttl="30s", renewable=True, meta={"purpose": "qe-harness"})
    child_token = created["auth"]["client_token"]
    assert created["auth"]["lease_duration"] == 30
    assert created["auth"]["renewable"] is True

    child = hvac.Client(url=vault.addr, token=child_token, timeout=10)
    assert child.is_authenticated()
    renewed = child.auth.token.renew_self(increment="1h")
    assert renewed["auth"]["lease_duration"] == 3600
    assert child.auth.token.lookup_self()["data"]["ttl"] > 30

    # A token created non-renewable cannot be renewed: the server says so, it does not silently extend.
    fixed = root.auth.token.create(policies=["default"], ttl="30s", renewable=False)["auth"]["client_token"]
    with pytest.raises(InvalidRequest):
        hvac.Client(url=vault.addr, token=fixed, timeout=10).auth.token.renew_self(increment="1h")

    root.auth.token.revoke(child_token)
    assert not child.is_authenticated()
    with pytest.raises(Forbidden):
        child.auth.token.lookup_self()
    root.auth.token.revoke(fixed)


def test_local_dev_server_keeps_its_token_out_of_files_and_reprs() -> None:
    with LocalVault() as server:
        client = hvac.Client(url=server.addr, token=server.token, timeout=10)
        client.secrets.kv.v2.create_or_update_secret(path="probe", secret={"v": "1"}, mount_point="secret")
        assert server.work_dir is not None
        written = b"".join(p.read_bytes() for p in server.work_dir.rglob("*") if p.is_file())
        assert server.token.encode() not in written
        assert server.token not in repr(server)
        assert server.token not in repr(server.endpoint)

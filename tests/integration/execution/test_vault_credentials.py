"""Testnet keys read from a real Vault-API server (OpenBao dev server or Vault) through quantumedge.secrets,
then used to sign orders on the local Binance peer: the path a deployment takes, with nothing faked."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import hvac
import pytest

from quantumedge.execution.domain import ids
from quantumedge.execution.service import ExecutionService
from quantumedge.execution.settings import ExecutionSettings
from quantumedge.secrets import paths
from quantumedge.secrets.bootstrap import wait_kv2_ready
from quantumedge.secrets.errors import SecretsError
from quantumedge.secrets.settings import VaultSettings
from quantumedge.settings import Settings
from quantumedge.shared import topics
from quantumedge.shared.bus import MemoryBus
from tests.integration.execution.rig import SECRET, SYMBOL, standard_book, wait_until
from tests.peers.binance_trading import BinanceTradingPeer
from tests.support.execution_builders import decision
from tests.support.signing import signed


@pytest.fixture
def kv_mount(vault) -> Iterator[tuple[hvac.Client, str]]:
    """A KV v2 mount of this test's own, so other tests' secrets on the shared server are untouched."""
    client = hvac.Client(url=vault.addr, token=vault.token)
    mount = f"exec-{uuid.uuid4().hex[:8]}"
    client.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    wait_kv2_ready(client, mount)  # a fresh kv-v2 mount refuses writes for a moment
    try:
        yield client, mount
    finally:
        client.sys.disable_secrets_engine(mount)


def settings_for(vault, mount: str, peer: BinanceTradingPeer) -> Settings:
    return Settings(
        bus="memory",
        symbols=[SYMBOL],
        vault=VaultSettings(addr=vault.addr, token=vault.token, kv_mount=mount),
        execution=ExecutionSettings(
            venue="testnet", rest_url=peer.rest_url, ws_api_url=peer.ws_url, recv_window_ms=1000
        ),
    )


def test_testnet_keys_from_vault_sign_orders_on_the_venue(vault, kv_mount) -> None:
    client, mount = kv_mount
    with BinanceTradingPeer(symbols=(SYMBOL,)) as peer:
        standard_book(peer)
        client.secrets.kv.v2.create_or_update_secret(
            path=paths.EXCHANGE_TESTNET, secret={"api_key": peer.api_key, "api_secret": SECRET}, mount_point=mount
        )
        bus = MemoryBus()
        service = ExecutionService(settings_for(vault, mount, peer), bus)
        service.start()
        try:
            bus.publish(topics.DECISIONS, SYMBOL, signed(decision("vault-1", qty=0.1)))
            cid = ids.order_id(ids.ENTRY, "vault-1")
            wait_until(lambda: peer.accepted.get(cid) == 1, what="the order signed with the Vault key")
            wait_until(lambda: service.engine.orders[cid].status.name == "FILLED", what="its fill")
            assert service.status_line()["venue"] == "testnet"
        finally:
            service.stop()
            bus.close()


def test_testnet_refuses_to_start_when_vault_lacks_the_key(vault, kv_mount) -> None:
    _, mount = kv_mount
    with BinanceTradingPeer(symbols=(SYMBOL,)) as peer:
        with pytest.raises(SecretsError) as err:
            ExecutionService(settings_for(vault, mount, peer), MemoryBus())
        assert paths.EXCHANGE_TESTNET in str(err.value) and "not found" in str(err.value)
        assert peer.requests == []  # nothing was sent to the venue

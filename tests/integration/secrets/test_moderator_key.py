"""The moderator's API key comes from the real Vault, through risk's AppRole policy; no other role can read it, and a
missing key stops risk naming the path."""

from __future__ import annotations

import secrets

import pytest

from quantumedge.risk.moderator_client import moderator_for
from quantumedge.risk.moderator_settings import ModeratorSettings
from quantumedge.risk.settings import RiskSettings
from quantumedge.secrets import paths
from quantumedge.secrets.errors import SecretsError
from quantumedge.secrets.store import connect
from quantumedge.settings import Settings
from tests.integration.secrets.conftest import QeVault
from tests.peers.chat_completions import ChatCompletionsPeer


def _risk(qe: QeVault, base_url: str) -> Settings:
    mod = ModeratorSettings(enabled=True, base_url=base_url, model="judge", budget_ms=2_000)
    return Settings(bus="kafka", vault=qe.approle_settings("risk"), risk=RiskSettings(moderator=mod))


def test_key_from_vault_reaches_the_endpoint_and_only_risk_reads_it(qe_vault: QeVault) -> None:
    key = "sk-" + secrets.token_hex(16)
    peer = ChatCompletionsPeer(key).start()
    try:
        with pytest.raises(SecretsError) as err:
            moderator_for(_risk(qe_vault, peer.base_url))
        assert paths.MODERATOR_KEY in str(err.value)

        qe_vault.write(paths.MODERATOR_KEY, {"api_key": key})
        client = moderator_for(_risk(qe_vault, peer.base_url))
        assert client is not None
        try:
            outcome = client.review({"symbol": "BTCUSDT"})
        finally:
            client.close()
        # The peer answers only with the right bearer key: a verdict proves the key came through.
        assert outcome.verdict is not None and outcome.verdict.verdict == "allow"
        for role in ("execution", "ingest", "inference", "operator"):
            with connect(qe_vault.approle_settings(role), role) as store, pytest.raises(SecretsError):
                store.read(paths.MODERATOR_KEY)
    finally:
        peer.stop()

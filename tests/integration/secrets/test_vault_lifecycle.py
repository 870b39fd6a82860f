"""Token renewal, re-login, rotation without restart, and a clear stop on revocation — on a real server.

Waits are bounded by Events (they end as soon as the behaviour happens); nothing asserts on durations.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from quantumedge.secrets import errors, paths
from quantumedge.secrets.errors import SecretUnavailable
from quantumedge.secrets.masking import SecretData
from quantumedge.secrets.require import require_secrets
from quantumedge.secrets.store import connect
from quantumedge.settings import load_settings
from tests.integration.secrets.conftest import QeVault, exchange_keys

pytestmark = pytest.mark.integration

WAIT_S = 60.0  # upper bound only, for a loaded 2-core CI machine


def _eventually(check: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_short_ttl_token_is_renewed_in_the_background(qe_vault: QeVault) -> None:
    qe_vault.write(paths.EXCHANGE_TESTNET, exchange_keys())
    token = qe_vault.service_token("execution-testnet", ttl="3s", renewable=True)
    with connect(qe_vault.token_settings(token), "execution-testnet") as store:
        assert store.running
        # Two renewals of a 3 s token (at about 2 s and 4 s): it outlived its original TTL because we renewed it.
        assert _eventually(lambda: store.stats.renewals >= 2)
        lookup = qe_vault.root.auth.token.lookup(token)["data"]
        assert lookup["ttl"] > 0
        assert store.read(paths.EXCHANGE_TESTNET).version == 1
        assert store.failure is None


def test_approle_logs_in_again_when_the_token_reaches_its_max_ttl(qe_vault: QeVault) -> None:
    qe_vault.write(paths.EXCHANGE_TESTNET, exchange_keys())
    qe_vault.root.auth.approle.create_or_update_approle(
        "execution-testnet",
        token_policies=qe_vault.policies("execution-testnet"),
        token_ttl="2s",
        token_max_ttl="4s",
        mount_point=qe_vault.base.approle_mount,
    )
    with connect(qe_vault.approle_settings("execution-testnet"), "execution-testnet") as store:
        # Renewal is capped by the 4 s max TTL, so the store logs in again before the token dies.
        assert _eventually(lambda: store.stats.relogins >= 1)
        assert store.failure is None
        assert store.read(paths.EXCHANGE_TESTNET)["api_key"]


def test_rotated_secret_is_picked_up_without_restart(qe_vault: QeVault, monkeypatch: pytest.MonkeyPatch) -> None:
    first = exchange_keys()
    qe_vault.write(paths.EXCHANGE_TESTNET, first)
    settings = load_settings(
        execution={"venue": "testnet"}, vault=qe_vault.approle_settings("execution-testnet").model_dump()
    )
    loaded = require_secrets(settings, "execution")
    try:
        assert loaded.source == "vault" and loaded[paths.EXCHANGE_TESTNET]["api_key"] == first["api_key"]
        seen: list[SecretData] = []
        rotated = threading.Event()

        def on_rotation(data: SecretData) -> None:
            seen.append(data)
            rotated.set()

        loaded.watch(paths.EXCHANGE_TESTNET, on_rotation)

        # The operator rotates the key with the CLI (values from env, never from arguments).
        second = exchange_keys()
        monkeypatch.setenv("QE_NEW_API_KEY", second["api_key"])
        monkeypatch.setenv("QE_NEW_API_SECRET", second["api_secret"])
        code = qe_vault.cli(
            "rotate", paths.EXCHANGE_TESTNET, "--from-env", "api_key=QE_NEW_API_KEY", "--from-env",
            "api_secret=QE_NEW_API_SECRET",
        )  # fmt: skip
        assert code == 0
        assert rotated.wait(WAIT_S)
        assert dict(seen[0]) == second and seen[0].version == 2
        assert loaded[paths.EXCHANGE_TESTNET]["api_secret"] == second["api_secret"]  # the service's view moved on
        assert loaded.store is not None and loaded.store.stats.watch_updates == 1
    finally:
        loaded.close()


def test_revoked_token_stops_cleanly_once_not_in_a_loop(qe_vault: QeVault) -> None:
    qe_vault.write(paths.EXCHANGE_TESTNET, exchange_keys())
    token = qe_vault.service_token("execution-testnet", ttl="3s", renewable=True)
    store = connect(qe_vault.token_settings(token), "execution-testnet")
    failures: list[SecretUnavailable] = []
    watch_errors: list[SecretUnavailable] = []
    stopped = threading.Event()
    store.on_failure(lambda exc: (failures.append(exc), stopped.set()))
    store.watch(paths.EXCHANGE_TESTNET, lambda _d: None, on_error=watch_errors.append)
    try:
        qe_vault.root.auth.token.revoke(token)
        assert stopped.wait(WAIT_S)  # the background renewal notices and stops
        assert _eventually(lambda: not store.running)
        assert len(failures) == 1 and failures[0].kind == errors.TOKEN_INVALID
        assert "revoked" in failures[0].reason and "QE_VAULT_TOKEN" in failures[0].reason
        assert [e.path for e in watch_errors] == [paths.EXCHANGE_TESTNET]
        with pytest.raises(SecretUnavailable) as err:
            store.read(paths.EXCHANGE_TESTNET)
        assert paths.EXCHANGE_TESTNET in str(err.value) and "revoked" in str(err.value)
        # Further attempts do not hammer Vault or notify again.
        assert store.renew() is False and store.check_watches() == 0
        assert len(failures) == 1 and len(watch_errors) == 1
    finally:
        store.close()


def test_revoked_approle_token_recovers_by_logging_in_again(qe_vault: QeVault) -> None:
    keys = exchange_keys()
    qe_vault.write(paths.EXCHANGE_TESTNET, keys)
    with connect(qe_vault.approle_settings("execution-testnet"), "execution-testnet") as store:
        qe_vault.root.auth.token.revoke(store.client.token)
        assert store.read(paths.EXCHANGE_TESTNET)["api_key"] == keys["api_key"]
        assert store.stats.relogins == 1 and store.failure is None


def test_approle_with_destroyed_secret_id_stops_with_the_reason(qe_vault: QeVault) -> None:
    qe_vault.write(paths.EXCHANGE_TESTNET, exchange_keys())
    creds = qe_vault.approle_settings("execution-testnet")
    store = connect(creds, "execution-testnet")
    failures: list[SecretUnavailable] = []
    store.on_failure(failures.append)
    try:
        qe_vault.root.auth.approle.destroy_secret_id(
            "execution-testnet", creds.approle_secret_id.get_secret_value(), mount_point=qe_vault.base.approle_mount
        )
        qe_vault.root.auth.token.revoke(store.client.token)
        with pytest.raises(SecretUnavailable) as err:
            store.read(paths.EXCHANGE_TESTNET)
        assert err.value.kind == errors.LOGIN_FAILED and "refused" in err.value.reason
        assert len(failures) == 1 and store.failure is not None
        assert _eventually(lambda: not store.running)
    finally:
        store.close()

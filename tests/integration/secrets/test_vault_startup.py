"""Start-up behaviour against a real Vault-API server: testnet refuses without its key, sealed and
unreachable Vaults are named, and the operator token hash in Vault drives the gRPC interceptor."""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import hvac
import pytest

from quantumedge.secrets import errors, paths
from quantumedge.secrets.bootstrap import wait_kv2_ready
from quantumedge.secrets.errors import SecretsRequiredError, SecretUnavailable
from quantumedge.secrets.require import require_secrets
from quantumedge.secrets.settings import VaultSettings
from quantumedge.secrets.store import connect
from quantumedge.settings import load_settings
from quantumedge.shared.auth import OperatorAuthInterceptor, operator_tokens
from quantumedge.shared.grpc_server import GrpcServer
from quantumedge.v1 import risk_pb2, risk_pb2_grpc
from tests.integration.secrets.conftest import QeVault, exchange_keys
from tools.harness.process import free_port_pair, spawn, terminate, wait_until
from tools.harness.vault import bao_binary, vault_health

pytestmark = pytest.mark.integration


def _execution_settings(qe_vault: QeVault, venue: str, role: str = ""):
    """Execution's settings with the credentials of `role` (default: the venue's own execution role)."""
    creds = qe_vault.approle_settings(role or paths.vault_role("execution", venue))
    return load_settings(execution={"venue": venue}, vault=creds.model_dump())


def test_execution_on_testnet_refuses_to_start_without_its_secret(qe_vault: QeVault) -> None:
    settings = _execution_settings(qe_vault, "testnet")
    with pytest.raises(SecretsRequiredError) as err:
        require_secrets(settings, "execution")
    assert err.value.failures[0].kind == errors.NOT_FOUND
    assert "execution cannot start" in str(err.value) and paths.EXCHANGE_TESTNET in str(err.value)
    assert "quantumedge secrets rotate" in str(err.value)

    keys = exchange_keys()
    qe_vault.write(paths.EXCHANGE_TESTNET, keys)
    loaded = require_secrets(_execution_settings(qe_vault, "testnet"), "execution")
    try:
        assert loaded.source == "vault" and loaded[paths.EXCHANGE_TESTNET]["api_key"] == keys["api_key"]
    finally:
        loaded.close()

    # Live reads its own path; testnet keys do not stand in for it.
    with pytest.raises(SecretsRequiredError, match="binance-live"):
        require_secrets(_execution_settings(qe_vault, "live"), "execution")


def test_start_with_the_wrong_role_names_permission_denied(qe_vault: QeVault) -> None:
    qe_vault.write(paths.EXCHANGE_LIVE, exchange_keys())
    settings = _execution_settings(qe_vault, "live", role="risk")  # risk's credentials on the execution pod
    with pytest.raises(SecretsRequiredError) as err:
        require_secrets(settings, "execution")
    assert err.value.failures[0].kind == errors.PERMISSION_DENIED
    assert paths.EXCHANGE_LIVE in str(err.value) and "permission denied" in str(err.value)


def test_paper_never_logs_in_even_with_vault_configured(qe_vault: QeVault) -> None:
    mount = qe_vault.base.approle_mount
    role_id = qe_vault.root.auth.approle.read_role_id("execution", mount_point=mount)["data"]["role_id"]
    # A single-use secret-id: any login would consume it.
    minted = qe_vault.root.adapter.post(f"/v1/auth/{mount}/role/execution/secret-id", json={"num_uses": 1})
    secret_id = minted["data"]["secret_id"]
    vault = qe_vault.settings(auth_method="approle", approle_role_id=role_id, approle_secret_id=secret_id)
    settings = load_settings(execution={"venue": "paper"}, vault=vault.model_dump())
    assert require_secrets(settings, "execution").source == "none"
    still_there = qe_vault.root.auth.approle.read_secret_id("execution", secret_id, mount_point=mount)
    assert still_there["data"]["secret_id_num_uses"] == 1


@pytest.fixture
def private_vault() -> Iterator[tuple[str, hvac.Client, str]]:
    """A second, non-dev OpenBao server of our own (real: initialised and unsealed here), so sealing it
    cannot disturb the shared test server."""
    port = free_port_pair()
    work = Path(tempfile.mkdtemp(prefix="qe-bao-seal-"))
    (work / "server.hcl").write_text(
        f'storage "inmem" {{}}\nlistener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
        "disable_mlock = true\n"
    )
    addr = f"http://127.0.0.1:{port}"
    process = spawn([bao_binary(), "server", f"-config={work / 'server.hcl'}"], output=work / "bao.log")
    try:
        wait_until(lambda: vault_health(addr) is not None, timeout_s=60, interval_s=0.1)
        yield addr, hvac.Client(url=addr, timeout=10), str(work)
    finally:
        terminate(process.pid, grace_s=5, process=process)
        for file in work.iterdir():
            file.unlink()
        work.rmdir()


def test_sealed_and_uninitialised_vault_are_named_and_transient(private_vault) -> None:
    addr, client, _ = private_vault
    with pytest.raises(SecretUnavailable) as err:
        connect(VaultSettings(addr=addr, token="s." + secrets.token_hex(8)), "execution")
    assert err.value.kind == errors.SEALED and "not initialized" in err.value.reason

    init = client.sys.initialize(secret_shares=1, secret_threshold=1)
    unseal_key, root_token = init["keys"][0], init["root_token"]
    client.sys.submit_unseal_key(unseal_key)
    client.token = root_token
    client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    wait_kv2_ready(client, "secret")  # a fresh kv-v2 mount refuses writes for a moment
    keys = exchange_keys()
    client.secrets.kv.v2.create_or_update_secret(paths.EXCHANGE_TESTNET, keys)
    token = client.auth.token.create(policies=["root"], ttl="1h")["auth"]["client_token"]

    with connect(VaultSettings(addr=addr, token=token), "execution") as store:
        assert store.read(paths.EXCHANGE_TESTNET)["api_key"] == keys["api_key"]
        client.sys.seal()
        with pytest.raises(SecretUnavailable) as err:
            store.read(paths.EXCHANGE_TESTNET)
        assert err.value.kind == errors.SEALED and f"vault at {addr} is sealed" in str(err.value)
        assert store.renew() is False and store.failure is None  # sealed is transient: retried, not fatal
        client.sys.submit_unseal_key(unseal_key)
        assert store.read(paths.EXCHANGE_TESTNET)["api_secret"] == keys["api_secret"]


def test_operator_token_hash_from_vault_guards_halt_and_follows_rotation(
    qe_vault: QeVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(vault=qe_vault.approle_settings("risk").model_dump())
    store = connect(settings.vault, "risk")  # normally made inside operator_tokens; here so the test can close it
    tokens = operator_tokens(settings, "risk", store)
    assert tokens.verify(qe_vault.operator_token) == "operator"

    halted: list[str] = []

    class Risk(risk_pb2_grpc.RiskServiceServicer):
        def Halt(self, request, context):
            from quantumedge.shared.auth import current_actor

            halted.append(current_actor())
            return risk_pb2.HaltResponse(halted=True)

    server = GrpcServer(
        0,
        [(risk_pb2_grpc.add_RiskServiceServicer_to_server, Risk(), "quantumedge.v1.RiskService")],
        [OperatorAuthInterceptor(tokens)],
        host="127.0.0.1",
    )
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    stub = risk_pb2_grpc.RiskServiceStub(channel)
    try:
        with pytest.raises(grpc.RpcError) as err:
            stub.Halt(risk_pb2.HaltRequest())
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        stub.Halt(risk_pb2.HaltRequest(), metadata=(("authorization", f"Bearer {qe_vault.operator_token}"),))
        assert halted == ["operator"]

        # Rotate the operator token: the service follows the new hash (watched) without a restart.
        new_token = "op-" + secrets.token_urlsafe(24)
        monkeypatch.setenv("QE_OPERATOR_TOKEN", new_token)
        assert qe_vault.cli("rotate", "--operator-token") == 0
        wait_until(lambda: tokens.verify(new_token) == "operator", timeout_s=60, interval_s=0.05)
        with pytest.raises(grpc.RpcError) as err:
            stub.Halt(risk_pb2.HaltRequest(), metadata=(("authorization", f"Bearer {qe_vault.operator_token}"),))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        stub.Halt(risk_pb2.HaltRequest(), metadata=(("authorization", f"Bearer {new_token}"),))
        assert halted == ["operator", "operator"]
    finally:
        channel.close()
        server.stop(0)
        store.close()

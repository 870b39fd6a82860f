"""Optional mutual TLS on the gRPC servers: a client without a certificate from the CA cannot connect."""

from __future__ import annotations

import hashlib
from pathlib import Path

import grpc
import pytest

from quantumedge.secrets.settings import VaultSettings
from quantumedge.shared.auth import OperatorAuthInterceptor, OperatorTokens, server_credentials_from_settings
from quantumedge.shared.config import ConfigError
from quantumedge.shared.grpc_server import GrpcServer
from quantumedge.v1 import risk_pb2, risk_pb2_grpc
from tests.support.pki import TestCA

TOKEN = "op-token-for-mtls-tests-0123456789"


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, bytes | Path]:
    ca = TestCA(tmp_path)
    server = ca.issue("localhost", dns=("localhost",))
    client = ca.issue("ops-laptop")
    return {
        "ca_file": ca.file,
        "server_file": server.cert_file,
        "server_key_file": server.key_file,
        "ca": ca.pem,
        "client": client.cert,
        "client_key": client.key,
    }


def test_mutual_tls_requires_a_client_certificate_and_names_it_in_the_actor(pki) -> None:
    settings = VaultSettings(
        grpc_tls_cert_file=str(pki["server_file"]),
        grpc_tls_key_file=str(pki["server_key_file"]),
        grpc_tls_client_ca_file=str(pki["ca_file"]),
    )
    creds = server_credentials_from_settings(settings)
    assert creds is not None
    seen: list[str] = []

    class Risk(risk_pb2_grpc.RiskServiceServicer):
        def Halt(self, request, context):
            from quantumedge.shared.auth import current_actor

            seen.append(current_actor())
            return risk_pb2.HaltResponse(halted=True)

    tokens = OperatorTokens.parse(hashlib.sha256(TOKEN.encode()).hexdigest())
    server = GrpcServer(
        0,
        [(risk_pb2_grpc.add_RiskServiceServicer_to_server, Risk(), "quantumedge.v1.RiskService")],
        [OperatorAuthInterceptor(tokens)],
        host="127.0.0.1",
        credentials=creds,
    )
    server.start()
    target = f"localhost:{server.port}"
    try:
        with_cert = grpc.ssl_channel_credentials(pki["ca"], pki["client_key"], pki["client"])
        with grpc.secure_channel(target, with_cert) as channel:
            stub = risk_pb2_grpc.RiskServiceStub(channel)
            assert stub.Halt(
                risk_pb2.HaltRequest(), metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=10
            ).halted
        assert seen == ["operator@ops-laptop"]

        without_cert = grpc.ssl_channel_credentials(pki["ca"])
        with grpc.secure_channel(target, without_cert) as channel:
            with pytest.raises(grpc.RpcError) as err:
                risk_pb2_grpc.RiskServiceStub(channel).Halt(
                    risk_pb2.HaltRequest(), metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=10
                )
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert seen == ["operator@ops-laptop"]
    finally:
        server.stop(0)


def test_mutual_tls_settings_are_all_or_nothing(tmp_path: Path) -> None:
    assert server_credentials_from_settings(VaultSettings()) is None
    with pytest.raises(ConfigError, match="QE_VAULT__GRPC_TLS_KEY_FILE"):
        server_credentials_from_settings(VaultSettings(grpc_tls_cert_file="a", grpc_tls_client_ca_file="c"))
    with pytest.raises(ConfigError, match="not found"):
        server_credentials_from_settings(
            VaultSettings(
                grpc_tls_cert_file=str(tmp_path / "x"),
                grpc_tls_key_file=str(tmp_path / "y"),
                grpc_tls_client_ca_file=str(tmp_path / "z"),
            )
        )

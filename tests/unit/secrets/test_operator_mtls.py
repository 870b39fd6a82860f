"""Optional mutual TLS on the gRPC servers: a client without a certificate from the CA cannot connect."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from quantumedge.secrets.settings import VaultSettings
from quantumedge.shared.auth import OperatorAuthInterceptor, OperatorTokens, server_credentials_from_settings
from quantumedge.shared.config import ConfigError
from quantumedge.shared.grpc_server import GrpcServer
from quantumedge.v1 import risk_pb2, risk_pb2_grpc

TOKEN = "op-token-for-mtls-tests-0123456789"


def _cert(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    san: str | None = None,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(obj: x509.Certificate | ec.EllipticCurvePrivateKey) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, bytes | Path]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("qe-test-ca", ca_key, None, ca=True)
    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    server = _cert("localhost", server_key, (ca.subject, ca_key), san="localhost")
    client = _cert("ops-laptop", client_key, (ca.subject, ca_key))
    files = {"ca": _pem(ca), "server": _pem(server), "server_key": _pem(server_key)}
    for name, data in files.items():
        (tmp_path / f"{name}.pem").write_bytes(data)
    return {
        "dir": tmp_path,
        "ca": _pem(ca),
        "client": _pem(client),
        "client_key": _pem(client_key),
    }


def test_mutual_tls_requires_a_client_certificate_and_names_it_in_the_actor(pki) -> None:
    d = pki["dir"]
    settings = VaultSettings(
        grpc_tls_cert_file=str(d / "server.pem"),
        grpc_tls_key_file=str(d / "server_key.pem"),
        grpc_tls_client_ca_file=str(d / "ca.pem"),
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

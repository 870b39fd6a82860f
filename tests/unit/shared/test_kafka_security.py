"""The bus's Kafka security: the plaintext gate, credentials that never show, and TLS built in memory.

The TLS context is proven with a real handshake against an in-process TLS server that requires a client
certificate (the certificate and key reached OpenSSL through a memfd, never a file)."""

from __future__ import annotations

import os
import pickle
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from quantumedge.settings import Settings
from quantumedge.shared.bus import kafka_security as ks
from quantumedge.shared.bus import make_bus
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.config import KafkaSettings
from tools.harness.pki import CertificateAuthority

PASSWORD = "scram-" + "p4ss" * 6  # pragma: allowlist secret - a fixture, not a credential


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("qe-unit-ca")


def creds(**values: str) -> ks.KafkaCredentials:
    return ks.KafkaCredentials("quantumedge/kafka/risk", values)


# ---- the plaintext gate ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_plaintext_is_refused_unless_allowed(protocol: str) -> None:
    with pytest.raises(ks.KafkaSecurityError) as refused:
        KafkaBus(KafkaSettings(security_protocol=protocol), creds(username="u", password=PASSWORD))
    assert refused.value.code == ks.PLAINTEXT_REFUSED
    assert "QE_KAFKA__ALLOW_PLAINTEXT" in str(refused.value)


def test_plaintext_passes_when_allowed_or_embedded() -> None:
    ks.check_transport(KafkaSettings(allow_plaintext=True), None)
    ks.check_transport(KafkaSettings(), None, plaintext_allowed=True)
    # The in-process bus of embedded mode never reaches the gate at all.
    assert type(make_bus(Settings(bus="memory"))).__name__ == "MemoryBus"


def test_serve_refuses_plaintext_before_touching_vault() -> None:
    # No Vault address is configured: the refusal is about the protocol, not about a login that failed.
    with pytest.raises(ks.KafkaSecurityError) as refused:
        make_bus(Settings(bus="kafka", kafka=KafkaSettings(security_protocol="SASL_PLAINTEXT")), identity="risk")
    assert refused.value.code == ks.PLAINTEXT_REFUSED


def test_secured_bus_without_credentials_is_refused() -> None:
    settings = KafkaSettings(security_protocol="SASL_SSL")
    with pytest.raises(ks.KafkaSecurityError) as missing:
        KafkaBus(settings)
    assert missing.value.code == ks.NO_CREDENTIALS
    with pytest.raises(ks.KafkaSecurityError) as half:
        KafkaBus(settings, creds(username="quantumedge-risk"))
    assert half.value.code == ks.INCOMPLETE_CREDENTIALS


def test_one_principal_per_process() -> None:
    settings = Settings(bus="kafka", kafka=KafkaSettings(security_protocol="SASL_SSL"))
    with pytest.raises(ks.KafkaSecurityError) as refused:
        make_bus(settings, identity=None)
    assert refused.value.code == ks.ONE_PRINCIPAL_PER_PROCESS


def test_vault_unreachable_names_the_path() -> None:
    settings = Settings(bus="kafka", kafka=KafkaSettings(security_protocol="SASL_SSL"))
    with pytest.raises(ks.KafkaSecurityError) as unavailable:
        make_bus(settings, identity="inference")
    assert unavailable.value.code == ks.CREDENTIALS_UNAVAILABLE
    assert "quantumedge/kafka/inference" in str(unavailable.value)


def test_ssl_protocol_needs_a_client_certificate(ca: CertificateAuthority) -> None:
    with pytest.raises(ks.KafkaSecurityError) as refused:
        ks.check_transport(KafkaSettings(security_protocol="SSL"), creds(ca_pem=ca.cert_pem))
    assert refused.value.code == ks.INCOMPLETE_CREDENTIALS


def test_settings_name_the_service() -> None:
    from pydantic import ValidationError

    for field in ("credentials_path", "principal_template"):
        with pytest.raises(ValidationError):
            KafkaSettings(**{field: "quantumedge/kafka/static"})
        with pytest.raises(ValidationError):
            KafkaSettings(**{field: "{service}/{other}"})


# ---- credentials never show ------------------------------------------------------------------------------------


def test_credentials_hide_their_values_and_refuse_pickling(ca: CertificateAuthority) -> None:
    leaf = ca.issue("quantumedge-risk")
    c = creds(username="quantumedge-risk", password=PASSWORD, private_key_pem=leaf.key_pem())
    text = repr(c) + str(c) + f"{c}"
    assert PASSWORD not in text and "PRIVATE KEY" not in text and "quantumedge/kafka/risk" in text
    with pytest.raises(TypeError):
        pickle.dumps(c)
    with pytest.raises(ks.KafkaSecurityError) as unknown:
        creds(username="u", passwd=PASSWORD)
    assert unknown.value.code == ks.INCOMPLETE_CREDENTIALS


def test_client_options_carry_sasl_and_an_in_memory_tls_context(ca: CertificateAuthority) -> None:
    settings = KafkaSettings(security_protocol="SASL_SSL")
    options = ks.client_options(settings, creds(username="quantumedge-risk", password=PASSWORD, ca_pem=ca.cert_pem))
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "quantumedge-risk"
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "qe-unit-ca"),),)]


def test_bad_pem_is_a_clear_error() -> None:
    with pytest.raises(ks.KafkaSecurityError) as bad:
        ks.tls_context(creds(ca_pem="-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"))
    assert bad.value.code == ks.BAD_TLS_MATERIAL


# ---- mutual TLS with the key in memory -------------------------------------------------------------------------


@pytest.fixture
def tls_server(ca: CertificateAuthority, tmp_path: Path) -> Iterator[dict]:
    """A TLS server on 127.0.0.1 that requires a client certificate from the test CA; it records the peer CN."""
    leaf = ca.issue("broker", ips=("127.0.0.1",))
    (tmp_path / "server.pem").write_text(leaf.key_pem() + leaf.cert_pem)  # the server side: a test peer
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=ca.cert_pem)
    context.load_cert_chain(tmp_path / "server.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    seen: dict = {}

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                seen["peer"] = dict(x[0] for x in tls.getpeercert()["subject"])["commonName"]
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as exc:
            seen["error"] = exc

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield {"port": listener.getsockname()[1], "seen": seen, "thread": thread}
    listener.close()


def _memfds() -> list[str]:
    """Targets of this process's open descriptors that are memory files made for a Kafka client key."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the descriptor listdir itself used, closed by now
            continue
        if "qe-kafka" in target:
            out.append(target)
    return out


def test_client_certificate_is_loaded_from_memory_and_presented(ca: CertificateAuthority, tls_server: dict) -> None:
    client = ca.issue("quantumedge-execution")
    key_password = "k3y-" + "pw" * 8  # pragma: allowlist secret - a fixture
    credentials = creds(
        ca_pem=ca.cert_pem,
        certificate_pem=client.cert_pem,
        private_key_pem=client.key_pem(key_password),
        private_key_password=key_password,
    )
    context = ks.tls_context(credentials)
    assert _memfds() == [], "the memory file holding the key stays open"
    with (
        socket.create_connection(("127.0.0.1", tls_server["port"]), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.recv(2) == b"ok"
    tls_server["thread"].join(10)
    assert tls_server["seen"] == {"peer": "quantumedge-execution"}


def test_a_server_outside_the_trusted_ca_is_refused(tls_server: dict) -> None:
    other = CertificateAuthority.create("someone-else")
    context = ks.tls_context(creds(ca_pem=other.cert_pem))
    with (
        socket.create_connection(("127.0.0.1", tls_server["port"]), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname="127.0.0.1")


def test_default_credentials_path_is_the_one_the_vault_policies_grant() -> None:
    from quantumedge.secrets import paths

    for identity in (*paths.SERVICE_ROLES, paths.KAFKA_ADMIN_IDENTITY):
        assert ks.credentials_path(KafkaSettings(), identity) == paths.kafka_path(identity)
    for role in paths.SERVICE_ROLES:
        assert paths.kafka_path(role) in paths.readable_paths(role)
        others = [paths.kafka_path(o) for o in (*paths.SERVICE_ROLES, paths.KAFKA_ADMIN_IDENTITY) if o != role]
        assert set(others) <= set(paths.forbidden_paths(role))

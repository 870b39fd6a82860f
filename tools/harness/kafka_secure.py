"""The local KRaft broker with security as a real deployment has it: SASL_SSL (SCRAM-SHA-512) for clients, ACLs.

    with SaslSslKafka(users=("quantumedge-ingest", ...)) as kafka:
        kafka.bootstrap, kafka.ca_pem, kafka.password("quantumedge-ingest"), kafka.client_config("admin")

- a self-made CA (tools/harness/pki.py) signs the broker's certificate (SAN 127.0.0.1 and localhost); the
  broker reads PEM keystore and truststore files from its own work dir;
- clients connect to one SASL_SSL listener; SCRAM credentials are added when the storage is formatted
  (`kafka-storage format --add-scram`), so no user exists before the broker starts and none is added later;
- the broker talks to itself (inter-broker) and to its controller over mutual TLS with its own certificate,
  so no password sits in its configuration; its certificate's subject and `admin` are the super users;
- StandardAuthorizer with allow.everyone.if.no.acl.found=false: a principal may do only what an ACL allows.
"""

from __future__ import annotations

import secrets
import ssl
from collections.abc import Iterable

from tools.harness.kafka import LocalKafka, kafka_is_ready
from tools.harness.pki import CertificateAuthority
from tools.harness.process import free_port

ADMIN = "admin"
BROKER_CN = "qe-broker"
MECHANISM = "SCRAM-SHA-512"


class SaslSslKafka(LocalKafka):
    def __init__(self, users: Iterable[str] = (), *, heap: str = "384m", **kwargs: object) -> None:
        super().__init__(heap=heap, **kwargs)  # type: ignore[arg-type]
        self.ca = CertificateAuthority.create("qe-test-kafka-ca")
        self._passwords = {name: secrets.token_urlsafe(24) for name in (ADMIN, *users)}
        self.internal_port: int | None = None

    @property
    def ca_pem(self) -> str:
        return self.ca.cert_pem

    @property
    def users(self) -> tuple[str, ...]:
        return tuple(self._passwords)

    def password(self, user: str) -> str:
        return self._passwords[user]

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts only this broker's CA (built in memory)."""
        context = ssl.create_default_context(cadata=self.ca_pem)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def client_config(self, user: str, password: str | None = None) -> dict[str, object]:
        """kafka-python settings for connecting as `user` (its own password unless another is given)."""
        return {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": "SASL_SSL",
            "ssl_context": self.ssl_context(),
            "sasl_mechanism": MECHANISM,
            "sasl_plain_username": user,
            "sasl_plain_password": self._passwords[user] if password is None else password,
        }

    # -- LocalKafka hooks -------------------------------------------------------------------------------------

    def _listener_config(self) -> dict[str, str]:
        assert self.work_dir is not None and self.port is not None and self.controller_port is not None
        self.internal_port = free_port()
        while self.internal_port in (self.port, self.controller_port):
            self.internal_port = free_port()
        broker = self.ca.issue(BROKER_CN, dns=("localhost",), ips=("127.0.0.1",))
        scram_module = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        return {
            "listeners": (
                f"SASL_SSL://127.0.0.1:{self.port},INTERNAL://127.0.0.1:{self.internal_port},"
                f"CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"SASL_SSL://127.0.0.1:{self.port},INTERNAL://127.0.0.1:{self.internal_port}",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL",
            "inter.broker.listener.name": "INTERNAL",
            "controller.listener.names": "CONTROLLER",
            # PEM given inline: Java 17 cannot read a PBES2-encrypted PEM key file, and an unencrypted key is
            # accepted only inline. The work dir (0700) holds it; the CA is thrown away with the broker.
            "ssl.keystore.type": "PEM",
            "ssl.keystore.key": _one_line(broker.key_pem()),
            "ssl.keystore.certificate.chain": _one_line(broker.cert_pem + self.ca.cert_pem),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.certificates": _one_line(self.ca.cert_pem),
            "listener.name.internal.ssl.client.auth": "required",
            "listener.name.controller.ssl.client.auth": "required",
            "sasl.enabled.mechanisms": MECHANISM,
            "listener.name.sasl_ssl.sasl.enabled.mechanisms": MECHANISM,
            f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config": scram_module,
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{ADMIN};User:CN={BROKER_CN}",
            "allow.everyone.if.no.acl.found": "false",
        }

    def _format_args(self) -> list[str]:
        args: list[str] = []
        for user, password in self._passwords.items():
            args += ["--add-scram", f"{MECHANISM}=[name={user},password={password}]"]
        return args

    def _probe(self) -> tuple[bool, str]:
        config = self.client_config(ADMIN)
        config.pop("bootstrap_servers")
        return kafka_is_ready(self.bootstrap, **config)


def _one_line(pem: str) -> str:
    """A PEM block as one properties value (the properties reader turns the escapes back into newlines)."""
    return pem.strip().replace("\n", "\\n")

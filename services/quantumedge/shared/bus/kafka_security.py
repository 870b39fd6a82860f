"""How a process authenticates to Kafka: its credentials from Vault, a TLS context built in memory, the gate
that refuses plaintext.

Credentials live in Vault at `kafka.credentials_path` (default quantumedge/kafka/<service>; `admin` for
`quantumedge topics`), one KV v2 secret with these keys:

    username, password          SASL (SCRAM-SHA-512 by default); the username is the Kafka principal User:<name>
    ca_pem                      the CA bundle that signed the brokers' certificates (empty = the system's CAs)
    certificate_pem,            optional client certificate and key (mutual TLS, or protocol SSL alone);
    private_key_pem,            the key may be encrypted with private_key_password
    private_key_password

Nothing of it is read from the environment or written to a file: the CA goes in with `cadata=`, and a client
key reaches OpenSSL through an anonymous memory file (memfd) that is closed as soon as it was loaded.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Callable, Mapping
from typing import Any

from quantumedge.shared import vault_layout
from quantumedge.shared.config import ConfigError, KafkaSettings
from quantumedge.shared.errors import OperatorError
from quantumedge.shared.secret_reader import SecretsError, SecretUnavailable

ADMIN = "admin"
PLAINTEXT_PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT")
KEYS = ("username", "password", "ca_pem", "certificate_pem", "private_key_pem", "private_key_password")


# Reason codes of KafkaSecurityError, for callers and tests to branch on.
PLAINTEXT_REFUSED = "plaintext_refused"
NO_CREDENTIALS = "no_credentials"
INCOMPLETE_CREDENTIALS = "incomplete_credentials"
BAD_TLS_MATERIAL = "bad_tls_material"
CREDENTIALS_UNAVAILABLE = "credentials_unavailable"
ONE_PRINCIPAL_PER_PROCESS = "one_principal_per_process"
TOPICS_NOT_VISIBLE = "topics_not_visible"


class KafkaSecurityError(OperatorError, ConfigError):
    """Kafka security is misconfigured or its credentials are unavailable; the message names what and where.
    `code` (= `reason`) is one of the codes above; the CLI prints `<reason>: <message>` on one line."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, reason=code, setting=_SETTING_OF.get(code, ""))

    @property
    def code(self) -> str:
        return self.reason


_SETTING_OF = {
    PLAINTEXT_REFUSED: "QE_KAFKA__SECURITY_PROTOCOL",
    NO_CREDENTIALS: "QE_KAFKA__CREDENTIALS_PATH",
    INCOMPLETE_CREDENTIALS: "QE_KAFKA__CREDENTIALS_PATH",
    BAD_TLS_MATERIAL: "QE_KAFKA__CREDENTIALS_PATH",
    CREDENTIALS_UNAVAILABLE: "QE_KAFKA__CREDENTIALS_PATH",
}


class KafkaCredentials:
    """One process's Kafka identity, in memory only. repr names the source, never a value."""

    __slots__ = ("_values", "source")

    def __init__(self, source: str, values: Mapping[str, str]) -> None:
        unknown = sorted(set(values) - set(KEYS))
        if unknown:
            raise KafkaSecurityError(
                INCOMPLETE_CREDENTIALS,
                f"kafka credentials at {source} have unknown keys {unknown}; known: {list(KEYS)}",
            )
        self.source = source
        self._values = {key: str(values.get(key) or "") for key in KEYS}

    def __getattr__(self, key: str) -> str:
        if key in KEYS:
            return self._values[key]
        raise AttributeError(key)

    def __repr__(self) -> str:
        present = [key for key in KEYS if self._values[key]]
        return f"KafkaCredentials(source={self.source!r}, keys={present})"

    __str__ = __repr__

    def __reduce__(self) -> object:
        raise TypeError("KafkaCredentials cannot be pickled")  # pickling would be a way onto disk


def check_transport(
    settings: KafkaSettings, credentials: KafkaCredentials | None, *, plaintext_allowed: bool = False
) -> None:
    """Refuse what would send records or passwords in clear, or authenticate with nothing. Raises
    KafkaSecurityError naming the setting to change."""
    check_protocol(settings, plaintext_allowed=plaintext_allowed)
    if settings.needs_credentials:
        check_credentials(settings, credentials)


def check_protocol(settings: KafkaSettings, *, plaintext_allowed: bool = False) -> None:
    """PLAINTEXT and SASL_PLAINTEXT only with kafka.allow_plaintext (a local broker) or when the run allows
    it (`plaintext_allowed`: settings.behaviours.kafka_plaintext_allowed, the embedded run)."""
    protocol = settings.security_protocol
    if protocol in PLAINTEXT_PROTOCOLS and not (settings.allow_plaintext or plaintext_allowed):
        raise KafkaSecurityError(
            PLAINTEXT_REFUSED,
            f"kafka.security_protocol={protocol} sends every record{' and password' if protocol != 'PLAINTEXT' else ''}"
            " in clear and is refused: use SASL_SSL (QE_KAFKA__SECURITY_PROTOCOL=SASL_SSL, credentials in Vault) or, "
            "for a local development broker only, set QE_KAFKA__ALLOW_PLAINTEXT=true",
        )


def check_credentials(settings: KafkaSettings, credentials: KafkaCredentials | None) -> None:
    protocol = settings.security_protocol
    if credentials is None:
        raise KafkaSecurityError(
            NO_CREDENTIALS,
            f"kafka.security_protocol={protocol} needs this process's credentials from Vault "
            f"(kafka.credentials_path={settings.credentials_path!r}); none were loaded",
        )
    if settings.uses_sasl and not (credentials.username and credentials.password):
        raise KafkaSecurityError(
            INCOMPLETE_CREDENTIALS,
            f"kafka credentials at {credentials.source} lack username and password (needed by {protocol})",
        )
    if protocol == "SSL" and not (credentials.certificate_pem and credentials.private_key_pem):
        raise KafkaSecurityError(
            INCOMPLETE_CREDENTIALS,
            f"kafka.security_protocol=SSL authenticates by client certificate, but {credentials.source} lacks "
            "certificate_pem and private_key_pem",
        )
    if bool(credentials.certificate_pem) != bool(credentials.private_key_pem):
        raise KafkaSecurityError(
            INCOMPLETE_CREDENTIALS,
            f"kafka credentials at {credentials.source}: certificate_pem and private_key_pem go together",
        )


def client_options(settings: KafkaSettings, credentials: KafkaCredentials | None) -> dict[str, Any]:
    """The kafka-python security settings (protocol, TLS context, SASL) for these settings and credentials."""
    options: dict[str, Any] = {"security_protocol": settings.security_protocol}
    if credentials is None:
        return options
    if settings.uses_tls:
        options["ssl_context"] = tls_context(credentials, check_hostname=settings.ssl_check_hostname)
    if settings.uses_sasl:
        options |= {
            "sasl_mechanism": settings.sasl_mechanism,
            "sasl_plain_username": credentials.username,
            "sasl_plain_password": credentials.password,
        }
    return options


def tls_context(credentials: KafkaCredentials, *, check_hostname: bool = True) -> ssl.SSLContext:
    """A client TLS context (TLS 1.2+, certificate verification on) built from PEM held in memory."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = check_hostname
    try:
        if credentials.ca_pem:
            context.load_verify_locations(cadata=credentials.ca_pem)
        else:
            context.load_default_certs()
        if credentials.certificate_pem:
            _load_client_chain(context, credentials)
    except ssl.SSLError as exc:
        # The library's text names the PEM problem, never the key itself.
        reason = exc.reason or str(exc)
        raise KafkaSecurityError(
            BAD_TLS_MATERIAL, f"kafka TLS material at {credentials.source} is unusable: {reason}"
        ) from None
    return context


def _load_client_chain(context: ssl.SSLContext, credentials: KafkaCredentials) -> None:
    """load_cert_chain reads only paths: hand it an anonymous memory file (never on a disk), closed right after."""
    if not hasattr(os, "memfd_create"):
        raise KafkaSecurityError(
            BAD_TLS_MATERIAL, "a Kafka client certificate needs Linux (memfd_create) to stay off the disk"
        )
    fd = os.memfd_create("qe-kafka-client", os.MFD_CLOEXEC)
    try:
        data = (credentials.private_key_pem.strip() + "\n" + credentials.certificate_pem.strip() + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        context.load_cert_chain(f"/proc/self/fd/{fd}", password=credentials.private_key_password or None)
    finally:
        os.close(fd)


def credentials_path(settings: KafkaSettings, identity: str) -> str:
    return settings.credentials_path.format(service=identity)


def load_credentials(
    settings: Any, identity: str, *, connect_fn: Callable[..., Any] | None = None
) -> KafkaCredentials | None:
    """Read `identity`'s Kafka credentials from Vault (None when the protocol needs none).

    `settings` is the whole Settings; the Vault login is the service's own role (`operator` for admin).
    Raises KafkaSecurityError naming the path, the reason and how to store the secret.
    """
    kafka: KafkaSettings = settings.kafka
    if not kafka.needs_credentials:
        return None
    path = credentials_path(kafka, identity)
    hint = (
        f"store it with `quantumedge secrets rotate {path} --stdin-json` (keys: username, password, ca_pem) "
        "and check access with `quantumedge secrets check`"
    )
    # The service's own Vault role (execution's depends on its venue), whose policy names this path alone.
    role = (
        "operator"
        if identity == ADMIN
        else vault_layout.vault_role(identity, vault_layout.venue_of(settings, identity))
    )
    try:
        if connect_fn is not None:
            store = connect_fn(settings.vault, role, reads_vault=settings.behaviours.reads_vault)
        else:
            store = settings.secret_reader(role)  # the settings root logs in (shared never imports secrets)
    except SecretsError as exc:
        reason = exc.reason if isinstance(exc, SecretUnavailable) else str(exc)
        raise KafkaSecurityError(
            CREDENTIALS_UNAVAILABLE, f"kafka credentials {path} unavailable: {reason}; {hint}"
        ) from None
    try:
        data = store.read(path)
    except SecretUnavailable as exc:
        raise KafkaSecurityError(
            CREDENTIALS_UNAVAILABLE, f"kafka credentials {path} unavailable: {exc.reason}; {hint}"
        ) from None
    finally:
        with contextlib.suppress(Exception):
            store.close()
    return KafkaCredentials(path, data)

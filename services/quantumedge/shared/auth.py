"""Operator authentication and service identity for changing gRPC calls, and optional mutual TLS.

Changing calls (Halt, Resume, Reduce, Activate, UpdateLimits, SubmitOrder, CancelAll, Flatten, ReloadModels,
ReviewOrder) need `authorization: Bearer <token>` metadata whose sha256 matches a configured hash (constant-time
compare), or, on a mutual-TLS connection, a client certificate whose name is allow-listed for that method
(grpc.service_identities: execution may call ReviewOrder). SubmitOrder forwards its caller's token to
ReviewOrder (`forward_metadata()`).
Failed authentications are throttled per peer (quantumedge.shared.throttle).
Hashes come from `vault.operator_token_sha256` ("hex" or "name:hex,...", a hash is not a secret) or from
Vault at `vault.operator_token_path` (keys = subject names, values = sha256 hex; rotations are watched).
No hash at all -> changing calls are refused (fail closed). Read-only calls, health and reflection stay open.

Every changing call is audited through `audit(method, allowed, subject, detail, code=...)` on audit.v1. A
servicer learns who called with `current_actor()` (the operator subject, "subject@cert", or the certificate
name of a service; "" on open calls). Never trust an `x-qe-actor` metadata entry sent by a client: it is only
what this module forwards downstream.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import grpc

from quantumedge.shared.audit import AuditFn, bus_audit
from quantumedge.shared.config import ConfigError
from quantumedge.shared.grpc_server import rewrap
from quantumedge.shared.logs import get_logger
from quantumedge.shared.secret_reader import SecretUnavailable
from quantumedge.shared.throttle import PeerThrottle, peer_host

log = get_logger(__name__)

PROTECTED_METHODS = frozenset(
    {
        "/quantumedge.v1.RiskService/Halt",
        "/quantumedge.v1.RiskService/Resume",
        "/quantumedge.v1.RiskService/Reduce",
        "/quantumedge.v1.RiskService/Activate",
        "/quantumedge.v1.RiskService/UpdateLimits",
        "/quantumedge.v1.ExecutionService/SubmitOrder",
        "/quantumedge.v1.ExecutionService/CancelAll",
        "/quantumedge.v1.ExecutionService/Flatten",
        "/quantumedge.v1.InferenceService/ReloadModels",
        # A reviewed order is published and traded: never anonymous (the operator's token, or execution's cert).
        "/quantumedge.v1.RiskService/ReviewOrder",
    }
)
ACTOR_KEY = "x-qe-actor"
DEFAULT_SUBJECT = "operator"
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


_actor: contextvars.ContextVar[str] = contextvars.ContextVar(ACTOR_KEY, default="")
_bearer_token: contextvars.ContextVar[str] = contextvars.ContextVar("qe-bearer", default="")


def current_actor() -> str:
    """The authenticated subject of the changing call being handled on this thread ("" otherwise)."""
    return _actor.get()


def actor_metadata() -> tuple[tuple[str, str], ...]:
    """Metadata to forward the actor on a downstream gRPC call (informational; the callee re-authenticates)."""
    actor = current_actor()
    return ((ACTOR_KEY, actor),) if actor else ()


def forward_metadata() -> tuple[tuple[str, str], ...]:
    """For a downstream call made on behalf of the current caller: its bearer token (the callee checks it
    again, and its audit names the operator) and the actor. Empty for a caller that had no token."""
    token = _bearer_token.get()
    return ((("authorization", f"Bearer {token}"),) if token else ()) + actor_metadata()


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class OperatorTokens:
    """The accepted token hashes by subject; thread-safe, replaceable at runtime (Vault rotation)."""

    def __init__(self, hashes: Mapping[str, str] | None = None, problem: str = "") -> None:
        self._lock = threading.Lock()
        self._hashes: dict[str, bytes] = {}
        self.problem = problem
        if hashes:
            self.update(hashes)

    @classmethod
    def parse(cls, spec: str) -> OperatorTokens:
        """From "hex" or "name:hex,name2:hex" (the operator_token_sha256 setting)."""
        hashes: dict[str, str] = {}
        for entry in filter(None, (e.strip() for e in spec.split(","))):
            name, _, digest = entry.rpartition(":")
            hashes[name or DEFAULT_SUBJECT] = digest
        return cls(hashes)

    def update(self, hashes: Mapping[str, str]) -> None:
        """Replace the accepted hashes; entries that are not sha256 hex are ignored (and named in the log)."""
        clean: dict[str, bytes] = {}
        for subject, digest in hashes.items():
            digest = str(digest).strip().lower()
            if _SHA256_HEX.match(digest):
                clean[str(subject)] = bytes.fromhex(digest)
            else:
                log.warning("operator token entry ignored: not a sha256 hex digest", extra={"subject": subject})
        with self._lock:
            self._hashes = clean
            if clean:
                self.problem = ""

    def set_problem(self, problem: str) -> None:
        self.problem = problem

    def __bool__(self) -> bool:
        return bool(self._hashes)

    @property
    def subjects(self) -> list[str]:
        return sorted(self._hashes)

    def verify(self, token: str) -> str | None:
        """The subject whose hash matches, else None. Compares against every hash in constant time."""
        presented = hashlib.sha256(token.encode()).digest()
        with self._lock:
            items = list(self._hashes.items())
        match = None
        for subject, digest in items:
            if hmac.compare_digest(presented, digest) and match is None:
                match = subject
        return match


def _bearer(metadata: Iterable[tuple[str, Any]] | None) -> str | None:
    for key, value in metadata or ():
        if key.lower() == "authorization":
            text = value.decode() if isinstance(value, bytes) else str(value)
            scheme, _, token = text.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return ""
    return None


class OperatorAuthInterceptor(grpc.ServerInterceptor):
    """Checks the bearer token (or the mTLS service identity) of changing calls; sets current_actor()."""

    def __init__(
        self,
        tokens: OperatorTokens,
        audit: AuditFn | None = None,
        protected: Iterable[str] = PROTECTED_METHODS,
        service: str = "",
        identities: Mapping[str, Iterable[str]] | None = None,
        throttle: PeerThrottle | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tokens = tokens
        self.audit = audit
        self.protected = frozenset(protected)
        self.service = service
        self.identities = {method: frozenset(names) for method, names in (identities or {}).items()}
        self.throttle = throttle if throttle is not None else PeerThrottle()
        self.clock = clock
        self._lock = threading.Lock()

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None], details: Any
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None or details.method not in self.protected:
            return handler
        return _wrap_handler(handler, details.method, self._authorize)

    def _authorize(self, method: str, context: grpc.ServicerContext) -> tuple[str, str]:
        """Returns (actor, bearer token), or aborts UNAUTHENTICATED (audited) or, for a peer over its budget of
        failures, RESOURCE_EXHAUSTED (counted, not audited one by one)."""
        peer = context.peer() or "?"
        names = _client_cert_names(context)
        cert = names[0] if names else ""
        where = f"peer={peer}" + (f" cert={cert}" if cert else "")
        token = _bearer(context.invocation_metadata())
        if token is None:
            identity = next((n for n in names if n in self.identities.get(method, ())), None)
            if identity is not None:
                self._audit(method, True, identity, f"service identity (mTLS certificate); {where}")
                return identity, ""
        subject, detail = self._check_token(token)
        if subject is None:
            with self._lock:
                failure = self.throttle.failure(peer_host(peer), self.clock())
            if not failure.audit:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{method}: too many failed authentications")
            note = f"; {failure.suppressed} failures before this one not audited" if failure.suppressed else ""
            self._audit(method, False, cert, f"{detail}{note}; {where}", failure.code)
            log.warning("changing call refused", extra={"method": method, "reason": detail, "peer": peer})
            context.abort(grpc.StatusCode.UNAUTHENTICATED, f"{method} needs an operator token: {detail}")
            raise AssertionError("unreachable: context.abort raises")  # pragma: no cover
        actor = f"{subject}@{cert}" if cert else subject
        self._audit(method, True, actor, where)
        return actor, token or ""

    def _check_token(self, token: str | None) -> tuple[str | None, str]:
        if not self.tokens:
            return None, self.tokens.problem or (
                "no operator token hash configured: set QE_VAULT__OPERATOR_TOKEN_SHA256 to the sha256 hex of your "
                "token, or store it in Vault with `quantumedge secrets rotate --operator-token`"
            )
        if token is None:
            return None, "missing 'authorization: Bearer <token>' metadata"
        if not token:
            return None, "malformed authorization metadata: want 'Bearer <token>'"
        subject = self.tokens.verify(token)
        return subject, "" if subject else "operator token not recognised"

    def _audit(self, method: str, allowed: bool, subject: str, detail: str, code: str = "") -> None:
        if self.audit is None:
            return
        try:
            if code:
                self.audit(method, allowed, subject, detail, code=code)
            else:
                self.audit(method, allowed, subject, detail)
        except Exception:
            # A failing audit sink must not block a Halt; it is logged loudly instead.
            log.exception("audit callback failed", extra={"method": method, "allowed": allowed})


def _client_cert_names(context: grpc.ServicerContext) -> list[str]:
    """The verified client certificate's common name, then its subject alternative names ([] without mTLS)."""
    try:
        auth = context.auth_context() or {}
    except Exception:
        return []
    names = [*auth.get("x509_common_name", []), *auth.get("x509_subject_alternative_name", [])]
    return list(dict.fromkeys(n.decode(errors="replace") for n in names))


Authorize = Callable[[str, grpc.ServicerContext], tuple[str, str]]


def _wrap_handler(handler: grpc.RpcMethodHandler, method: str, authorize: Authorize) -> grpc.RpcMethodHandler:
    def unary(behavior: Callable[..., Any]) -> Callable[..., Any]:
        def run(request: Any, context: grpc.ServicerContext) -> Any:
            actor, token = authorize(method, context)
            reset, reset_token = _actor.set(actor), _bearer_token.set(token)
            try:
                return behavior(request, context)
            finally:
                _bearer_token.reset(reset_token)
                _actor.reset(reset)

        return run

    def streaming(behavior: Callable[..., Any]) -> Callable[..., Any]:
        # Response streams run after the handler returns: keep the actor set while the generator runs.
        def run(request: Any, context: grpc.ServicerContext) -> Any:
            actor, token = authorize(method, context)
            reset, reset_token = _actor.set(actor), _bearer_token.set(token)
            try:
                yield from behavior(request, context)
            finally:
                _bearer_token.reset(reset_token)
                _actor.reset(reset)

        return run

    return rewrap(handler, unary, streaming)


# ---- wiring ---------------------------------------------------------------------------------------------------


def operator_tokens(settings: Any, role: str, store: Any = None) -> OperatorTokens:
    """The hashes a service checks against: configured hash first, else Vault (watched), else none (fail closed).

    Embedded mode never contacts Vault. A Vault problem does not stop the service: changing calls are refused
    with the reason until the hashes can be read (the watch picks them up when they appear or change).
    """
    vault = settings.vault
    if vault.operator_token_sha256:
        return OperatorTokens.parse(vault.operator_token_sha256)
    from_vault = settings.behaviours.operator_tokens_from_vault
    if not from_vault or not vault.addr:
        return OperatorTokens(
            problem="no operator token hash configured: set QE_VAULT__OPERATOR_TOKEN_SHA256 to the sha256 hex of "
            "your token" + (" (or configure QE_VAULT_ADDR to read it from Vault)" if from_vault else "")
        )
    path = vault.operator_token_path
    tokens = OperatorTokens()
    try:
        store = store or settings.secret_reader(role)  # the settings root logs in (shared never imports secrets)
        try:
            tokens.update(store.read(path))
        except SecretUnavailable as exc:
            tokens.set_problem(f"operator token hashes unavailable: {exc}")
        store.watch(path, tokens.update, on_error=lambda exc: tokens.set_problem(f"operator token hashes: {exc}"))
    except SecretUnavailable as exc:
        tokens.set_problem(f"operator token hashes unavailable: {exc}")
    if not tokens:
        log.warning("changing gRPC calls are refused until operator token hashes exist", extra={"why": tokens.problem})
    return tokens


def operator_auth_interceptor(
    settings: Any, role: str, audit: AuditFn | None = None, store: Any = None
) -> OperatorAuthInterceptor:
    """For a service's GrpcServer: `interceptors=[operator_auth_interceptor(settings, name, audit)]`."""
    return OperatorAuthInterceptor(operator_tokens(settings, role, store), audit, service=role)


# gRPC service of each QuantumEdge service name; a service without changing calls needs no interceptor.
GRPC_SERVICE = {
    "ingest": "quantumedge.v1.IngestService",
    "inference": "quantumedge.v1.InferenceService",
    "risk": "quantumedge.v1.RiskService",
    "execution": "quantumedge.v1.ExecutionService",
}


def build_interceptors(settings: Any, bus: Any, service: str) -> list[grpc.ServerInterceptor]:
    """What the runner puts in front of a service's servicers: operator auth / service identity, audited on
    audit.v1, with failed authentications throttled per peer."""
    grpc_service = GRPC_SERVICE.get(service, "")
    protected = [m for m in PROTECTED_METHODS if m.startswith(f"/{grpc_service}/")]
    if not protected:
        return []
    tokens = operator_tokens(settings, service)
    limits = settings.grpc
    return [
        OperatorAuthInterceptor(
            tokens,
            bus_audit(bus, service),
            protected=protected,
            service=service,
            identities=limits.service_identities,
            throttle=PeerThrottle(limits.auth_failure_burst, limits.auth_failures_per_minute),
        )
    ]


def server_credentials(
    cert_file: str | Path, key_file: str | Path, client_ca_file: str | Path, require_client_auth: bool = True
) -> grpc.ServerCredentials:
    """Mutual TLS: the server's chain + key, and the CA that client certificates must chain to."""
    key = Path(key_file).read_bytes()
    chain = Path(cert_file).read_bytes()
    ca = Path(client_ca_file).read_bytes()
    return grpc.ssl_server_credentials([(key, chain)], root_certificates=ca, require_client_auth=require_client_auth)


def server_credentials_from_settings(vault: Any) -> grpc.ServerCredentials | None:
    """mTLS credentials when vault.grpc_tls_* are set (all three or none); None means plaintext."""
    files = {
        "QE_VAULT__GRPC_TLS_CERT_FILE": vault.grpc_tls_cert_file,
        "QE_VAULT__GRPC_TLS_KEY_FILE": vault.grpc_tls_key_file,
        "QE_VAULT__GRPC_TLS_CLIENT_CA_FILE": vault.grpc_tls_client_ca_file,
    }
    given = {k: v for k, v in files.items() if v}
    if not given:
        return None
    if len(given) != len(files):
        missing = ", ".join(k for k in files if k not in given)
        raise ConfigError(f"mutual TLS needs all three files; missing: {missing}")
    unreadable = [f"{k}={v}" for k, v in given.items() if not Path(v).is_file()]
    if unreadable:
        raise ConfigError(f"mutual TLS file(s) not found: {', '.join(unreadable)}")
    return server_credentials(vault.grpc_tls_cert_file, vault.grpc_tls_key_file, vault.grpc_tls_client_ca_file)


def channel_credentials_from_settings(vault: Any) -> grpc.ChannelCredentials | None:
    """For a service calling another one when mutual TLS is on: it presents its own certificate (the one its
    server uses; issue it for both server and client auth) and checks the callee against the same CA."""
    if server_credentials_from_settings(vault) is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=Path(vault.grpc_tls_client_ca_file).read_bytes(),
        private_key=Path(vault.grpc_tls_key_file).read_bytes(),
        certificate_chain=Path(vault.grpc_tls_cert_file).read_bytes(),
    )

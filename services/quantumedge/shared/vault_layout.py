"""Where QuantumEdge's secrets live inside the KV v2 mount, and which Vault role needs which.

Shared (the keyring, Kafka credentials, operator token hashes) and the secrets package both read this layout,
so it lives in shared, which never imports secrets; quantumedge.secrets.paths re-exports it.

The HCL policies in deploy/vault/policies grant exactly these paths; keep both in step
(tests/unit/secrets/test_secrets_policies.py checks it).

Execution logs in with a role per venue, so one credential never reaches both testnet and live keys:
`execution` (paper: no exchange key), `execution-testnet` and `execution-live`. A venue role carries two
policies: the base `execution` policy (its config, operator token hashes, ...) and its venue's key policy.
"""

from __future__ import annotations

from typing import Any

SERVICE_ROLES = ("ingest", "inference", "risk", "execution")
# Venues whose exchange key lives in Vault; each has its own execution role and policy.
KEYED_VENUES = ("testnet", "live")
EXECUTION_VENUE_ROLES = tuple(f"execution-{venue}" for venue in KEYED_VENUES)
VAULT_ROLES = (*SERVICE_ROLES, *EXECUTION_VENUE_ROLES)
ALL_ROLES = (*VAULT_ROLES, "operator")

PREFIX = "quantumedge"
EXCHANGE_TESTNET = f"{PREFIX}/exchange/binance-testnet"
EXCHANGE_LIVE = f"{PREFIX}/exchange/binance-live"
# Keys inside an exchange secret: api_key plus api_secret (HMAC-SHA256) or private_key (Ed25519, PEM).
EXCHANGE_KEYS = ("api_key", "api_secret", "private_key")

# Risk's Ed25519 signing keyring: the private key only risk reads; the public keys risk and execution read
# (see quantumedge.shared.keyring and `quantumedge secrets rotate --signing-key`).
SIGNING_PRIVATE = f"{PREFIX}/signing/private"
SIGNING_PUBLIC = f"{PREFIX}/signing/public"
# The optional LLM risk moderator's API key (key `api_key`): risk alone reads it (risk.moderator.api_key_path).
MODERATOR_KEY = f"{PREFIX}/moderator/api-key"


def signing_paths(role: str) -> list[str]:
    """The signing keyring paths a role reads: risk both, execution the public keys, others none."""
    return {"risk": [SIGNING_PRIVATE, SIGNING_PUBLIC], "execution": [SIGNING_PUBLIC]}.get(service_of(role), [])


# Services whose gRPC API has changing calls read the operator token hashes.
OPERATOR_HASH_READERS = ("inference", "risk", "execution")

# Kafka credentials (SASL username/password, CA, optional client cert/key; quantumedge.shared.bus.kafka_security):
# one secret per service, readable by that service alone, and one for the Kafka admin (`quantumedge topics`),
# readable by no service or operator policy (an admin Vault token reads it).
KAFKA_ADMIN_IDENTITY = "admin"


def kafka_path(identity: str) -> str:
    """A service's (or `admin`'s) Kafka credentials; the default of the kafka.credentials_path setting."""
    return f"{PREFIX}/kafka/{identity}"


def config_path(role: str) -> str:
    """Each service may keep its own optional secret configuration here; only it can read it."""
    return f"{PREFIX}/config/{role}"


def exchange_path(venue: str) -> str | None:
    """The exchange key path of a venue; paper needs none."""
    return {"testnet": EXCHANGE_TESTNET, "live": EXCHANGE_LIVE}.get(venue)


def vault_role(service: str, venue: str = "paper") -> str:
    """The Vault role a service logs in as by default: execution's depends on its venue."""
    return f"execution-{venue}" if service == "execution" and venue in KEYED_VENUES else service


def venue_of(settings: Any, role: str) -> str:
    """The venue a service trades on (the whole Settings): execution's setting, paper for every other."""
    return str(getattr(settings.execution, "venue", "paper")) if role == "execution" else "paper"


def service_of(role: str) -> str:
    """The service a Vault role belongs to (execution-live -> execution)."""
    return "execution" if role in EXECUTION_VENUE_ROLES else role


def venue_of_role(role: str) -> str:
    """The venue whose key a role reads (execution-testnet -> testnet); paper for every other role."""
    return role.removeprefix("execution-") if role in EXECUTION_VENUE_ROLES else "paper"


def policies_of(role: str) -> tuple[str, ...]:
    """Policy files (deploy/vault/policies/<name>.hcl) a role's tokens carry."""
    return ("execution", role) if role in EXECUTION_VENUE_ROLES else (role,)


def required_paths(role: str, venue: str = "paper") -> list[str]:
    """Secrets a service cannot start without. Only execution on testnet/live needs any."""
    if service_of(role) == "execution":
        path = exchange_path(venue)
        return [path] if path else []
    return []


def readable_paths(role: str) -> list[str]:
    """Everything a role's policies let it read (used by `quantumedge secrets check`)."""
    paths = [config_path(service_of(role)), kafka_path(service_of(role))]
    key = exchange_path(venue_of_role(role))
    moderator = [MODERATOR_KEY] if service_of(role) == "risk" else []
    return [*paths, *([key] if key else []), *signing_paths(role), *moderator]


# The executor lease (execution.lease=vault), written with check-and-set. Another account: its own path and policy.
LEASES = "quantumedge/leases/execution"


def lease_paths(role: str) -> list[str]:
    """Paths a role writes its lease at (data only: the lease needs no metadata reads)."""
    return [LEASES] if service_of(role) == "execution" else []


def forbidden_paths(role: str) -> list[str]:
    """Paths a role must NOT be able to read: least privilege, checked by `secrets check`."""
    own = service_of(role)
    out = [config_path(other) for other in SERVICE_ROLES if other != own]
    out += [p for p in (EXCHANGE_TESTNET, EXCHANGE_LIVE) if p not in readable_paths(role)]
    out += [kafka_path(other) for other in (*SERVICE_ROLES, KAFKA_ADMIN_IDENTITY) if other != own]
    if own != "risk":
        out.append(SIGNING_PRIVATE)  # only risk signs
        out.append(MODERATOR_KEY)  # only risk calls the moderator
    return out


__all__ = [
    "ALL_ROLES",
    "EXCHANGE_KEYS",
    "EXCHANGE_LIVE",
    "EXCHANGE_TESTNET",
    "EXECUTION_VENUE_ROLES",
    "KAFKA_ADMIN_IDENTITY",
    "KEYED_VENUES",
    "LEASES",
    "MODERATOR_KEY",
    "OPERATOR_HASH_READERS",
    "PREFIX",
    "SERVICE_ROLES",
    "SIGNING_PRIVATE",
    "SIGNING_PUBLIC",
    "VAULT_ROLES",
    "config_path",
    "exchange_path",
    "forbidden_paths",
    "kafka_path",
    "lease_paths",
    "policies_of",
    "readable_paths",
    "required_paths",
    "service_of",
    "signing_paths",
    "vault_role",
    "venue_of",
    "venue_of_role",
]

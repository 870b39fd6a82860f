"""Where QuantumEdge's secrets live inside the KV v2 mount, and which role needs which.

The HCL policies in deploy/vault/policies grant exactly these paths; keep both in step
(tests/unit/secrets/test_policies.py checks it).
"""

from __future__ import annotations

SERVICE_ROLES = ("ingest", "inference", "risk", "execution")
ALL_ROLES = (*SERVICE_ROLES, "operator")

PREFIX = "quantumedge"
EXCHANGE_TESTNET = f"{PREFIX}/exchange/binance-testnet"
EXCHANGE_LIVE = f"{PREFIX}/exchange/binance-live"
# Keys inside an exchange secret: api_key plus api_secret (HMAC-SHA256) or private_key (Ed25519, PEM).
EXCHANGE_KEYS = ("api_key", "api_secret", "private_key")

# Services whose gRPC API has changing calls read the operator token hashes.
OPERATOR_HASH_READERS = ("inference", "risk", "execution")


def config_path(role: str) -> str:
    """Each service may keep its own optional secret configuration here; only it can read it."""
    return f"{PREFIX}/config/{role}"


def exchange_path(venue: str) -> str | None:
    """The exchange key path of a venue; paper needs none."""
    return {"testnet": EXCHANGE_TESTNET, "live": EXCHANGE_LIVE}.get(venue)


def required_paths(role: str, venue: str = "paper") -> list[str]:
    """Secrets a service cannot start without. Only execution on testnet/live needs any."""
    if role == "execution":
        path = exchange_path(venue)
        return [path] if path else []
    return []


def readable_paths(role: str) -> list[str]:
    """Everything a role's policy lets it read (used by `quantumedge secrets check`)."""
    paths = [config_path(role)]
    if role == "execution":
        paths += [EXCHANGE_TESTNET, EXCHANGE_LIVE]
    return paths


def forbidden_paths(role: str) -> list[str]:
    """Paths a role must NOT be able to read: least privilege, checked by `secrets check`."""
    out = [config_path(other) for other in SERVICE_ROLES if other != role]
    if role != "execution":
        out += [EXCHANGE_TESTNET, EXCHANGE_LIVE]
    return out

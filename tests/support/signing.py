"""Signing in tests: records signed as risk signs them, with the key the services under test trust.

- In-process services (MemoryBus) share the process's in-memory key pair: `signed(...)` uses it.
- `quantumedge serve` processes get SESSION_KEY through the environment (`signing_env()`, part of kafka_env):
  `signed_for_serve(...)` signs with it. Generated per test session, never written anywhere.
"""

from __future__ import annotations

from google.protobuf.message import Message

from quantumedge.shared import topics
from quantumedge.shared.keyring import process_keyring
from quantumedge.shared.security_settings import SigningSettings
from quantumedge.shared.signing import Keyring, PublicKeyring, SigningKey

SESSION_KEY = SigningKey.generate("test-session")
SESSION_KEYRING = Keyring(PublicKeyring({SESSION_KEY.key_id: SESSION_KEY.public_raw()}), SESSION_KEY)


def signing_env() -> dict[str, str]:
    """Risk's key and the public half for every serve process of a test (local-run settings, no Vault)."""
    return {
        "QE_SIGNING__PUBLIC_KEYS": f"{SESSION_KEY.key_id}:{SESSION_KEY.public_b64()}",
        "QE_SIGNING__PRIVATE_KEY": f"{SESSION_KEY.key_id}:{SESSION_KEY.seed_b64()}",
        "QE_SIGNING__ALLOW_ENV_KEY": "true",
    }


def session_signing_settings() -> SigningSettings:
    """signing_env() as settings, for services built in the test process on a Kafka bus."""
    env = signing_env()
    return SigningSettings(
        public_keys=env["QE_SIGNING__PUBLIC_KEYS"], private_key=env["QE_SIGNING__PRIVATE_KEY"], allow_env_key=True
    )


def _key_of(message: Message, topic: str, key: str | None) -> str:
    if key is not None:
        return key
    if topic == topics.DECISIONS:
        return message.symbol  # type: ignore[attr-defined]
    raise ValueError("control records need their key (halt / limits)")


def signed(message: Message, topic: str = topics.DECISIONS, key: str | None = None) -> Message:
    """Signed with the in-process key pair (what a RiskService on a MemoryBus in this process signs with)."""
    return process_keyring().sign(message, topic, _key_of(message, topic, key))


def signed_for_serve(message: Message, topic: str = topics.DECISIONS, key: str | None = None) -> Message:
    """Signed with the session key that `quantumedge serve` processes started with signing_env() trust."""
    return SESSION_KEYRING.sign(message, topic, _key_of(message, topic, key))

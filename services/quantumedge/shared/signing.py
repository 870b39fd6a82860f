"""Ed25519 signatures on what risk publishes (decisions, halt and limits records), and their verification.

Pure: no Vault, Kafka, files or clock. Where the keys come from is quantumedge.shared.keyring's business.

What is signed (`canonical_bytes`): the record with its `signature` field cleared, serialised with
deterministic protobuf encoding, framed together with a domain tag, the message type, the logical topic,
the record key and the key id. So a valid signature cannot be moved to another topic, symbol, message
type or key id, and any change of any field (unknown fields included: they are kept and re-serialised)
breaks it. Every refusal has a reason code (the constants below); tests and audits use the codes.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from google.protobuf.message import Message

from quantumedge.v1 import common_pb2

# Reason codes of a refused record (dead letters and audit records carry them).
UNSIGNED = "unsigned"
BAD_SIGNATURE = "bad_signature"
UNKNOWN_KEY = "unknown_key"
RETIRED_KEY = "retired_key"
REPLAYED = "replayed"
STALE = "stale"
TOMBSTONE = "tombstone"
UNEXPECTED_RECORD = "unexpected_record"
UNDECODABLE = "undecodable"
REFUSAL_CODES = (
    UNSIGNED,
    BAD_SIGNATURE,
    UNKNOWN_KEY,
    RETIRED_KEY,
    REPLAYED,
    STALE,
    TOMBSTONE,
    UNEXPECTED_RECORD,
    UNDECODABLE,
)

DOMAIN = b"quantumedge.v1.signature"
RETIRED = "retired"  # the value of a retired key id in the public keyring secret
ACTIVE = "active"  # the key of the public keyring secret naming the key risk signs with (informational)
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class KeyringError(ValueError):
    """A keyring or key that cannot be used; the message names the key id or entry, never key material."""


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: accepted when `code` is empty. `repeat`: accepted, but already handled."""

    code: str = ""
    detail: str = ""
    key_id: str = ""
    repeat: bool = False

    @property
    def ok(self) -> bool:
        return not self.code


ACCEPTED = Verdict()


def canonical_bytes(message: Message, topic: str, key: str, key_id: str) -> bytes:
    """The bytes a signature covers (see the module docstring)."""
    body = type(message)()
    body.CopyFrom(message)
    body.ClearField("signature")
    parts = (
        DOMAIN,
        body.DESCRIPTOR.full_name.encode(),
        topic.encode(),
        key.encode(),
        key_id.encode(),
        body.SerializeToString(deterministic=True),
    )
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"{what}: not base64") from None


def check_key_id(key_id: str) -> str:
    if not _KEY_ID.match(key_id or ""):
        raise KeyringError(f"key id {key_id!r} must be 1-64 letters, digits, '.', '_' or '-'")
    return key_id


def new_key_id(prefix: str = "ed25519") -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


class SigningKey:
    """One Ed25519 private key and its id. repr/str never show key material."""

    def __init__(self, key_id: str, private: Ed25519PrivateKey) -> None:
        self.key_id = check_key_id(key_id)
        self._private = private

    @classmethod
    def generate(cls, key_id: str | None = None) -> SigningKey:
        return cls(key_id or new_key_id(), Ed25519PrivateKey.generate())

    @classmethod
    def from_seed_b64(cls, key_id: str, seed_b64: str) -> SigningKey:
        seed = _b64decode(seed_b64, f"private key {key_id!r}")
        if len(seed) != 32:
            raise KeyringError(f"private key {key_id!r}: want 32 bytes (raw Ed25519 seed), got {len(seed)}")
        return cls(key_id, Ed25519PrivateKey.from_private_bytes(seed))

    def seed_b64(self) -> str:
        """The raw 32-byte seed, base64: only for writing it to Vault (or a local env var)."""
        raw = self._private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        return base64.b64encode(raw).decode()

    def public_raw(self) -> bytes:
        return self._private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def public_b64(self) -> str:
        return base64.b64encode(self.public_raw()).decode()

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id!r})"


class PublicKeyring:
    """An immutable set of public keys by id, some of them retired, and the id risk says it signs with."""

    def __init__(self, keys: Mapping[str, bytes] | None = None, retired: Iterable[str] = (), active: str = "") -> None:
        self._keys: dict[str, Ed25519PublicKey] = {}
        for key_id, raw in (keys or {}).items():
            if len(raw) != 32:
                raise KeyringError(f"public key {key_id!r}: want 32 bytes (raw Ed25519), got {len(raw)}")
            self._keys[check_key_id(key_id)] = Ed25519PublicKey.from_public_bytes(raw)
        self.retired = frozenset(retired)
        self.active = active

    @classmethod
    def from_secret(cls, data: Mapping[str, str]) -> PublicKeyring:
        """The Vault layout: {key_id: base64 public key | "retired", ..., "active": key_id}."""
        keys: dict[str, bytes] = {}
        retired: list[str] = []
        for key_id, value in data.items():
            if key_id == ACTIVE:
                continue
            if str(value).strip() == RETIRED:
                retired.append(check_key_id(key_id))
            else:
                keys[key_id] = _b64decode(str(value), f"public key {key_id!r}")
        return cls(keys, retired, str(data.get(ACTIVE, "")))

    @classmethod
    def from_spec(cls, spec: str, retired: str = "") -> PublicKeyring:
        """From "kid:base64,kid2:base64" (setting signing.public_keys) and "kid3,kid4" (signing.retired_keys)."""
        keys: dict[str, bytes] = {}
        for entry in filter(None, (e.strip() for e in spec.split(","))):
            key_id, sep, value = entry.partition(":")
            if not sep:
                raise KeyringError(f"public key entry {key_id!r}: want key_id:base64")
            keys[key_id.strip()] = _b64decode(value, f"public key {key_id.strip()!r}")
        return cls(keys, [r.strip() for r in retired.split(",") if r.strip()])

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    def with_key(self, key_id: str, public_raw: bytes, active: str = "") -> PublicKeyring:
        """This keyring plus one key (kept as it is when the id is there already)."""
        keys = {kid: key.public_bytes_raw() for kid, key in self._keys.items()}
        keys.setdefault(key_id, public_raw)
        return PublicKeyring(keys, self.retired, active or self.active)

    def status(self, key_id: str) -> str:
        if key_id in self.retired:
            return RETIRED_KEY
        return "" if key_id in self._keys else UNKNOWN_KEY

    def verify(self, signature: bytes, data: bytes, key_id: str) -> bool:
        try:
            self._keys[key_id].verify(signature, data)
        except (InvalidSignature, KeyError):
            return False
        return True


class Keyring:
    """What a process signs with (risk only) and verifies with (risk and execution); keys swap at runtime.

    `refresh` is called (at most once per verification) when a record names a key id not known yet: a key
    rotated in Vault is then learned at once rather than at the next watch poll. The adapter rate-limits it.
    """

    def __init__(
        self,
        public: PublicKeyring,
        signing: SigningKey | None = None,
        refresh: Callable[[], None] | None = None,
        source: str = "",
    ) -> None:
        self._lock = threading.Lock()
        self._public = public
        self._signing = signing
        self.refresh = refresh
        self.source = source
        self._closers: list[Callable[[], None]] = []

    def on_close(self, closer: Callable[[], None]) -> None:
        self._closers.append(closer)

    def close(self) -> None:
        """Release what follows the keys (a Vault watch); the keys stay usable."""
        while self._closers:
            self._closers.pop()()

    @property
    def public(self) -> PublicKeyring:
        return self._public

    @property
    def signing_key_id(self) -> str:
        signing = self._signing
        return signing.key_id if signing else ""

    def replace_public(self, public: PublicKeyring) -> None:
        with self._lock:
            self._public = public

    def replace_signing(self, signing: SigningKey) -> None:
        with self._lock:
            self._signing = signing

    def sign(self, message: Message, topic: str, key: str) -> Message:
        """Set `message.signature` for publication on `topic` under `key`; returns the message."""
        signing = self._signing
        if signing is None:
            raise KeyringError("this process holds no signing key (only risk signs)")
        data = canonical_bytes(message, topic, key, signing.key_id)
        message.signature.CopyFrom(common_pb2.Signature(key_id=signing.key_id, ed25519=signing.sign(data)))
        return message

    def verify(self, message: Message, topic: str, key: str) -> Verdict:
        """ACCEPTED, or a Verdict with UNSIGNED, UNKNOWN_KEY, RETIRED_KEY or BAD_SIGNATURE."""
        if not message.HasField("signature") or not message.signature.ed25519:
            return Verdict(UNSIGNED, f"{type(message).__name__} carries no signature")
        key_id = message.signature.key_id
        public = self._public
        status = public.status(key_id)
        if status == UNKNOWN_KEY and self.refresh is not None:
            self.refresh()
            public = self._public
            status = public.status(key_id)
        if status:
            known = ", ".join(public.key_ids) or "none"
            return Verdict(status, f"key id {key_id!r} is {status.replace('_key', '')} (valid: {known})", key_id)
        if not public.verify(message.signature.ed25519, canonical_bytes(message, topic, key, key_id), key_id):
            return Verdict(BAD_SIGNATURE, f"signature by {key_id!r} does not match the record on {topic}", key_id)
        return Verdict(key_id=key_id)


def ephemeral_keyring(source: str = "ephemeral") -> Keyring:
    """A fresh key pair held in memory only: embedded mode and backtests sign and verify on the same path."""
    key = SigningKey.generate(new_key_id("ephemeral"))
    public = PublicKeyring({key.key_id: key.public_raw()}, active=key.key_id)
    return Keyring(public, key, source=source)

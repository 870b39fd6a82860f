"""Ed25519 signatures on risk's records: what they cover, and each refusal's reason code."""

from __future__ import annotations

import base64

import pytest

from quantumedge.shared import signing, topics
from quantumedge.shared.signing import Keyring, KeyringError, PublicKeyring, SigningKey, ephemeral_keyring
from quantumedge.v1 import control_pb2, risk_pb2
from tests.support.execution_builders import decision


def _pair(key_id: str = "k1") -> tuple[SigningKey, Keyring]:
    key = SigningKey.generate(key_id)
    return key, Keyring(PublicKeyring({key_id: key.public_raw()}), key)


def test_a_signed_decision_verifies_and_names_its_key() -> None:
    _, keyring = _pair()
    d = keyring.sign(decision("i-1"), topics.DECISIONS, "BTCUSDT")
    assert d.signature.key_id == "k1" and len(d.signature.ed25519) == 64
    verdict = keyring.verify(d, topics.DECISIONS, "BTCUSDT")
    assert verdict.ok and verdict.key_id == "k1"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: setattr(d.intent, "quantity", 1.0),  # BUY 1 BTC instead of 0.1
        lambda d: setattr(d, "approved", not d.approved),
        lambda d: setattr(d, "decided_time_ns", d.decided_time_ns + 1),
        lambda d: d.reasons.append("extra"),
    ],
)
def test_any_changed_field_breaks_the_signature(tamper) -> None:
    _, keyring = _pair()
    d = keyring.sign(decision("i-1"), topics.DECISIONS, "BTCUSDT")
    tamper(d)
    assert keyring.verify(d, topics.DECISIONS, "BTCUSDT").code == signing.BAD_SIGNATURE


def test_a_signature_is_bound_to_topic_key_and_type() -> None:
    _, keyring = _pair()
    d = keyring.sign(decision("i-1"), topics.DECISIONS, "BTCUSDT")
    assert keyring.verify(d, topics.DECISIONS, "ETHUSDT").code == signing.BAD_SIGNATURE  # another symbol
    assert keyring.verify(d, topics.CONTROL, "BTCUSDT").code == signing.BAD_SIGNATURE  # another topic
    halt = keyring.sign(control_pb2.ControlEvent(event_id="e", halt=control_pb2.HaltState()), topics.CONTROL, "halt")
    assert keyring.verify(halt, topics.CONTROL, "limits").code == signing.BAD_SIGNATURE  # another record key


def test_bytes_appended_on_the_wire_break_it_too() -> None:
    _, keyring = _pair()
    d = keyring.sign(decision("i-1"), topics.DECISIONS, "BTCUSDT")
    # Field 14 (not in the schema), varint 1: an unknown field survives parsing and is verified with the rest.
    wire = d.SerializeToString() + bytes([14 << 3 | 0, 0x01])
    parsed = risk_pb2.RiskDecision.FromString(wire)
    assert parsed.signature == d.signature
    assert keyring.verify(parsed, topics.DECISIONS, "BTCUSDT").code == signing.BAD_SIGNATURE


def test_unsigned_unknown_and_retired_keys_are_refused_by_code() -> None:
    key, keyring = _pair("k1")
    assert keyring.verify(decision("i-1"), topics.DECISIONS, "BTCUSDT").code == signing.UNSIGNED
    _, forger = _pair("k1")  # same id, another key: the attacker's guess
    forged = forger.sign(decision("i-2"), topics.DECISIONS, "BTCUSDT")
    assert keyring.verify(forged, topics.DECISIONS, "BTCUSDT").code == signing.BAD_SIGNATURE
    _, other = _pair("k9")
    assert keyring.verify(
        other.sign(decision("i-3"), topics.DECISIONS, "BTCUSDT"), topics.DECISIONS, "BTCUSDT"
    ).code == (signing.UNKNOWN_KEY)
    old = keyring.sign(decision("i-4"), topics.DECISIONS, "BTCUSDT")
    keyring.replace_public(PublicKeyring({"k1": key.public_raw()}, retired=["k1"]))
    assert keyring.verify(old, topics.DECISIONS, "BTCUSDT").code == signing.RETIRED_KEY


def test_an_unknown_key_id_makes_the_keyring_refresh_once() -> None:
    new_key, new = _pair("k2")
    old_key, _ = _pair("k1")
    calls: list[int] = []
    keyring = Keyring(PublicKeyring({"k1": old_key.public_raw()}))

    def refresh() -> None:
        calls.append(1)
        keyring.replace_public(PublicKeyring({"k1": old_key.public_raw(), "k2": new_key.public_raw()}))

    keyring.refresh = refresh
    d = new.sign(decision("i-1"), topics.DECISIONS, "BTCUSDT")
    assert keyring.verify(d, topics.DECISIONS, "BTCUSDT").ok and calls == [1]
    assert keyring.verify(d, topics.DECISIONS, "BTCUSDT").ok and calls == [1]  # known now: no second read


def test_vault_layout_of_the_public_keyring() -> None:
    a, b = SigningKey.generate("a"), SigningKey.generate("b")
    public = PublicKeyring.from_secret({"a": a.public_b64(), "b": "retired", signing.ACTIVE: "a"})
    assert public.key_ids == ["a"] and public.retired == {"b"} and public.active == "a"
    assert public.status("a") == "" and public.status("b") == signing.RETIRED_KEY
    assert public.status("c") == signing.UNKNOWN_KEY
    with pytest.raises(KeyringError, match="'bad'") as err:
        PublicKeyring.from_secret({"bad": base64.b64encode(b"short").decode()})
    assert "short" not in str(err.value)
    with pytest.raises(KeyringError, match="key id"):
        PublicKeyring.from_secret({"no spaces": b.public_b64()})


def test_local_settings_layout_and_no_key_material_in_reprs() -> None:
    key = SigningKey.generate("local-1")
    public = PublicKeyring.from_spec(f"local-1:{key.public_b64()}", retired="old")
    assert public.key_ids == ["local-1"] and public.retired == {"old"}
    again = SigningKey.from_seed_b64("local-1", key.seed_b64())
    assert again.public_b64() == key.public_b64()
    assert key.seed_b64() not in repr(key) and key.seed_b64() not in str(key)
    with pytest.raises(KeyringError, match="32 bytes"):
        SigningKey.from_seed_b64("x", base64.b64encode(b"x" * 16).decode())


def test_ephemeral_keyrings_are_distinct_and_sign() -> None:
    one, two = ephemeral_keyring(), ephemeral_keyring()
    d = one.sign(decision("i-1"), topics.DECISIONS, "BTCUSDT")
    assert one.verify(d, topics.DECISIONS, "BTCUSDT").ok
    assert two.verify(d, topics.DECISIONS, "BTCUSDT").code == signing.UNKNOWN_KEY
    with pytest.raises(KeyringError, match="no signing key"):
        Keyring(one.public).sign(decision("i-2"), topics.DECISIONS, "BTCUSDT")

"""Intent and decision ids: the fast uuid5 path gives exactly the ids uuid.uuid5 gives (ids are compared id for id)."""

import uuid

from quantumedge.risk.domain.policy import ID_NAMESPACE, decision_id_for, intent_id_for, uuid5_str


def test_uuid5_str_matches_stdlib_for_varied_names() -> None:
    names = ["", "intent:", "intent:sig-1", "decision:signal:abc", "é ünïcode ✓", "x" * 1000]
    names += [f"intent:BTCUSDT-{i}-{i * 7919}" for i in range(500)]
    for name in names:
        assert uuid5_str(name) == str(uuid.uuid5(ID_NAMESPACE, name))


def test_intent_and_decision_ids_are_the_stdlib_uuid5() -> None:
    assert intent_id_for("s-42") == str(uuid.uuid5(ID_NAMESPACE, "intent:s-42"))
    assert decision_id_for("signal", "s-42") == str(uuid.uuid5(ID_NAMESPACE, "decision:signal:s-42"))
    assert uuid.UUID(intent_id_for("s-42")).version == 5

"""The checks before a decision or control record is acted on: redelivery vs replay, age, state order."""

from __future__ import annotations

from quantumedge.shared import signing, topics
from quantumedge.shared.admission import (
    AGAIN,
    NEW,
    REPLAY,
    ControlGate,
    DecisionGate,
    Sightings,
    StoredRecord,
    stored_state,
)
from quantumedge.shared.signing import ephemeral_keyring
from quantumedge.v1 import control_pb2, risk_pb2
from tests.support.execution_builders import decision

S = 1_000_000_000
NOW = 1_800_000_000 * S


def test_sightings_tell_a_redelivery_from_a_replay() -> None:
    seen = Sightings(max_ids=3)
    assert seen.see("a", (0, 10)) == NEW
    assert seen.see("a", (0, 10)) == AGAIN  # the same record again (rebalance, restart)
    assert seen.see("a", (1, 11)) == REPLAY  # the same id in another record
    assert seen.see("b", None) == NEW  # an RPC answer first ...
    assert seen.see("b", (0, 12)) == AGAIN  # ... then its copy on the bus
    assert seen.see("b", (0, 13)) == REPLAY
    for name in ("c", "d", "e"):
        seen.see(name, (0, 20))
    assert len(seen) == 3 and "a" not in seen  # bounded: the oldest is forgotten (the age bound covers it)


def _gate() -> tuple[DecisionGate, signing.Keyring]:
    keyring = ephemeral_keyring()
    return DecisionGate(keyring, max_age_ns=30 * S, max_ahead_ns=5 * S), keyring


def _signed(keyring: signing.Keyring, intent: str, decided_ns: int):
    return keyring.sign(decision(intent, decided_ns=decided_ns), topics.DECISIONS, "BTCUSDT")


def test_decisions_are_refused_when_old_early_or_replayed() -> None:
    gate, keyring = _gate()
    fresh = _signed(keyring, "fresh", NOW - 1 * S)
    assert gate.check(fresh, "BTCUSDT", (0, 1), NOW).ok
    assert gate.check(fresh, "BTCUSDT", (0, 1), NOW).ok  # redelivered: let through, the engine finds its order
    assert gate.check(fresh, "BTCUSDT", (0, 2), NOW).code == signing.REPLAYED
    old = _signed(keyring, "old", NOW - 31 * S)
    assert gate.check(old, "BTCUSDT", (0, 3), NOW).code == signing.STALE
    early = _signed(keyring, "early", NOW + 6 * S)
    assert gate.check(early, "BTCUSDT", (0, 4), NOW).code == signing.STALE


def test_an_old_redelivery_whose_order_exists_is_a_harmless_repeat() -> None:
    gate, keyring = _gate()  # a restarted process: it has never seen this decision
    handled = _signed(keyring, "before-restart", NOW - 300 * S)
    verdict = gate.check(handled, "BTCUSDT", (0, 7), NOW, handled=True)
    assert verdict.ok and verdict.repeat
    assert gate.check(handled, "BTCUSDT", (0, 8), NOW, handled=True).code == signing.REPLAYED


def _halt(keyring: signing.Keyring, event_id: str, t_ns: int, halted: bool) -> control_pb2.ControlEvent:
    event = control_pb2.ControlEvent(event_id=event_id, time_ns=t_ns, halt=control_pb2.HaltState(halted=halted))
    return keyring.sign(event, topics.CONTROL, "halt")


def test_an_old_genuine_resume_never_lifts_a_newer_halt() -> None:
    keyring = ephemeral_keyring()
    gate = ControlGate(keyring)
    resume = _halt(keyring, "resume-1", NOW - 60 * S, halted=False)
    halt = _halt(keyring, "halt-2", NOW, halted=True)
    assert gate.check(resume, "halt", (0, 1)).ok
    assert gate.check(halt, "halt", (0, 2)).ok
    assert gate.check(resume, "halt", (0, 3)).code == signing.REPLAYED  # the same record written again
    copy = _halt(keyring, "resume-9", NOW - 60 * S, halted=False)  # a genuine record never seen here, but older
    assert gate.check(copy, "halt", (0, 4)).code == signing.STALE
    assert gate.check(halt, "halt", (0, 2)).repeat  # redelivered: not applied twice
    wrong = keyring.sign(
        control_pb2.ControlEvent(event_id="x", time_ns=NOW, limits=risk_pb2.RiskLimits(max_order_notional=1e9)),
        topics.CONTROL,
        "halt",
    )
    assert gate.check(wrong, "halt", (0, 5)).code == signing.UNEXPECTED_RECORD


def test_own_publications_come_back_as_repeats() -> None:
    keyring = ephemeral_keyring()
    gate = ControlGate(keyring)
    halt = _halt(keyring, "mine", NOW, halted=True)
    gate.note_own("halt", halt)
    assert gate.check(halt, "halt", (0, 9)).repeat
    assert gate.check(halt, "halt", (0, 10)).code == signing.REPLAYED


def test_start_up_takes_the_newest_valid_state_not_the_last_record() -> None:
    keyring = ephemeral_keyring()
    halt = _halt(keyring, "halt-2", NOW, halted=True)
    replayed_resume = _halt(keyring, "resume-1", NOW - 60 * S, halted=False)
    forged = _halt(ephemeral_keyring(), "forged", NOW + S, halted=False)
    records = [
        StoredRecord("halt", halt.SerializeToString(), (0, 1)),
        StoredRecord("halt", replayed_resume.SerializeToString(), (0, 2)),  # appended after the halt
        StoredRecord("halt", forged.SerializeToString(), (0, 3)),
        StoredRecord("halt", b"", (0, 4)),  # a tombstone
        StoredRecord("audit-123", b"legacy", (0, 5)),  # not a state key: not looked at
    ]
    gate = ControlGate(keyring)
    state = stored_state(records, gate)
    assert state.latest["halt"].event_id == "halt-2" and state.latest["halt"].halt.halted
    assert sorted(v.code for _, v in state.refused) == [signing.TOMBSTONE, signing.UNKNOWN_KEY]
    assert not state.unverifiable
    # The consumer loop then meets the same records: repeats, not replays.
    assert gate.check(halt, "halt", (0, 1)).repeat


def test_start_up_with_only_invalid_state_records_reports_them_unverifiable() -> None:
    forged = _halt(ephemeral_keyring(), "forged", NOW, halted=False)
    state = stored_state([StoredRecord("halt", forged.SerializeToString(), (0, 1))], ControlGate(ephemeral_keyring()))
    assert state.latest == {} and state.unverifiable == {"halt": signing.UNKNOWN_KEY}


def test_rejections_are_only_checked_for_their_signature() -> None:
    gate, keyring = _gate()
    rejected = keyring.sign(decision("no", approved=False, decided_ns=NOW - 3600 * S), topics.DECISIONS, "BTCUSDT")
    assert gate.check(rejected, "BTCUSDT", (0, 1), NOW).ok  # old, and trades nothing anyway
    assert gate.check(rejected, "BTCUSDT", (0, 2), NOW).ok
    forged = ephemeral_keyring().sign(decision("no-2", approved=False), topics.DECISIONS, "BTCUSDT")
    assert gate.check(forged, "BTCUSDT", (0, 3), NOW).code == signing.UNKNOWN_KEY

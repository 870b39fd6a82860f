"""What a consumer checks before it acts on a decision or a control record: signature, freshness, replay.

Pure (time comes in as now_ns), shared by the services and the backtester so both run the same checks.

Redelivery versus replay: Kafka is at-least-once, so the same record (same partition and offset) can come
again after a rebalance or a restart; that is harmless (the order id derives from the intent id) and is
let through. A record that carries an id already seen at another position is a copy someone wrote again:
REPLAYED. After a restart the memory of ids is gone; the age bound then refuses what is old (STALE) unless
its intent already has an order (the redelivery of a decision handled before the restart: let through, the
engine finds the order and places none), and what is younger finds its order already placed too.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from quantumedge.shared import signing, topics
from quantumedge.shared.control_keys import (
    HALT_KEY,
    LIMITS_KEY,
    STATE_KEYS,
    TRADING_STATE_PREFIX,
    expected_payload,
    scope_of_key,
    state_key,
)
from quantumedge.shared.signing import ACCEPTED, Keyring, Verdict
from quantumedge.v1 import control_pb2, risk_pb2

# (partition, offset) of a record on the bus; None when it did not come from the bus (an RPC answer).
Position = tuple[int, int] | None

NEW, AGAIN, REPLAY = "new", "again", "replay"


class Sightings:
    """The first position each id was seen at (bounded, oldest forgotten first). Thread-safe: the consumer
    thread and gRPC threads (SubmitOrder's answer from risk) both check decisions."""

    def __init__(self, max_ids: int = 200_000) -> None:
        self.max_ids = max_ids
        self._first: OrderedDict[str, Position] = OrderedDict()
        self._lock = threading.Lock()

    def see(self, record_id: str, position: Position) -> str:
        """NEW the first time; AGAIN for the same record again (or its RPC / bus twin); REPLAY otherwise."""
        with self._lock:
            return self._see(record_id, position)

    def _see(self, record_id: str, position: Position) -> str:
        if record_id not in self._first:
            self._first[record_id] = position
            while len(self._first) > self.max_ids:
                self._first.popitem(last=False)
            return NEW
        first = self._first[record_id]
        if first is None:
            # Seen as an RPC answer (or our own publication) first: this is its copy on the bus.
            self._first[record_id] = position
            return AGAIN
        if position is None or position == first:
            return AGAIN
        return REPLAY

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._first

    def __len__(self) -> int:
        return len(self._first)


class DecisionGate:
    """Execution's check of every risk.decisions.v1 record (and of ReviewOrder answers) before it trades."""

    def __init__(self, keyring: Keyring, max_age_ns: int, max_ahead_ns: int, max_ids: int = 200_000) -> None:
        self.keyring = keyring
        self.max_age_ns = max_age_ns
        self.max_ahead_ns = max_ahead_ns
        self.sightings = Sightings(max_ids)

    def check(
        self, decision: risk_pb2.RiskDecision, key: str, position: Position, now_ns: int, handled: bool = False
    ) -> Verdict:
        """`handled`: the consumer already placed (or refused) this decision's intent. Then an old copy is a
        redelivery after a restart, harmless, and comes back as a repeat instead of STALE."""
        verdict = self.keyring.verify(decision, topics.DECISIONS, key)
        if not verdict.ok or not decision.approved:
            return verdict  # a rejection trades nothing: its age or a copy of it is harmless
        if self.sightings.see(decision.decision_id, position) == REPLAY:
            return Verdict(signing.REPLAYED, f"decision {decision.decision_id} was already seen on the bus")
        age = now_ns - decision.decided_time_ns
        if -age > self.max_ahead_ns:
            return Verdict(signing.STALE, f"decided {-age / 1e9:.1f} s in the future (clock skew bound exceeded)")
        if age > self.max_age_ns:
            if handled:
                return Verdict(key_id=verdict.key_id, repeat=True)
            return Verdict(signing.STALE, f"decided {age / 1e9:.1f} s ago (bound {self.max_age_ns / 1e9:g} s)")
        return verdict


class ControlGate:
    """Risk's and execution's check of control.v1 records: signed, the right payload for the key, not a replay,
    and not older than the state in force (an old genuine Resume must never lift a newer Halt)."""

    def __init__(self, keyring: Keyring, max_ids: int = 100_000) -> None:
        self.keyring = keyring
        self.sightings = Sightings(max_ids)
        self.applied_ns: dict[str, int] = {}

    def check(self, event: control_pb2.ControlEvent, key: str, position: Position) -> Verdict:
        verdict = self.keyring.verify(event, topics.CONTROL, key)
        if not verdict.ok:
            return verdict
        if expected_payload(key) != event.WhichOneof("payload"):
            return Verdict(signing.UNEXPECTED_RECORD, f"{event.WhichOneof('payload')} record under key {key!r}")
        seen = self.sightings.see(event.event_id, position)
        if seen == REPLAY:
            return Verdict(signing.REPLAYED, f"control event {event.event_id} was already seen on the bus")
        if seen == AGAIN:
            return Verdict(key_id=verdict.key_id, repeat=True)
        current = self.applied_ns.get(key, 0)
        if event.time_ns < current:
            return Verdict(signing.STALE, f"{key} record of {event.time_ns} is older than the one in force ({current})")
        self.applied_ns[key] = event.time_ns
        return verdict

    def note_own(self, key: str, event: control_pb2.ControlEvent) -> None:
        """A record this process published itself: in force from now, and its bus copy is no replay."""
        self.sightings.see(event.event_id, None)
        self.applied_ns[key] = max(self.applied_ns.get(key, 0), event.time_ns)


@dataclass
class StoredRecord:
    key: str
    value: bytes
    position: Position


@dataclass
class StoredState:
    """What a start-up read of control.v1 found: the newest valid record per key, and what was refused."""

    latest: dict[str, control_pb2.ControlEvent] = field(default_factory=dict)
    refused: list[tuple[StoredRecord, Verdict]] = field(default_factory=list)
    # Keys that had records but none that verified: their state is unknown (fail closed for "halt").
    unverifiable: dict[str, str] = field(default_factory=dict)


def stored_state(records: Iterable[StoredRecord], gate: ControlGate) -> StoredState:
    """The newest *valid* halt and limits records (by their time, not by offset: a replayed old record appended
    last must not win), with the gate primed so the consumer loop sees these records as already handled."""
    out = StoredState()
    valid: dict[str, list[tuple[control_pb2.ControlEvent, Position]]] = {}
    seen_keys: set[str] = set()
    for rec in records:
        if expected_payload(rec.key) is None:
            continue
        seen_keys.add(rec.key)
        if not rec.value:
            out.refused.append((rec, Verdict(signing.TOMBSTONE, f"tombstone under key {rec.key!r}")))
            continue
        try:
            event = control_pb2.ControlEvent.FromString(rec.value)
        except Exception:
            out.refused.append((rec, Verdict(signing.UNDECODABLE, "undecodable control record")))
            continue
        verdict = gate.keyring.verify(event, topics.CONTROL, rec.key)
        if verdict.ok and expected_payload(rec.key) != event.WhichOneof("payload"):
            verdict = Verdict(signing.UNEXPECTED_RECORD, f"{event.WhichOneof('payload')} under key {rec.key!r}")
        if not verdict.ok:
            out.refused.append((rec, verdict))
            continue
        valid.setdefault(rec.key, []).append((event, rec.position))
    for key, events in valid.items():
        for event, position in events:
            gate.sightings.see(event.event_id, position)
        newest = max(events, key=lambda item: item[0].time_ns)[0]
        out.latest[key] = newest
        gate.applied_ns[key] = newest.time_ns
    for key in seen_keys - set(valid):
        out.unverifiable[key] = next(v.code for r, v in out.refused if r.key == key)
    return out


def accepted_state(verdict: Verdict) -> bool:
    """A checked control record to apply now (accepted and not a redelivery of one already applied)."""
    return verdict.ok and not verdict.repeat


__all__ = [
    "ACCEPTED",
    "HALT_KEY",
    "LIMITS_KEY",
    "STATE_KEYS",
    "TRADING_STATE_PREFIX",
    "ControlGate",
    "DecisionGate",
    "Position",
    "Sightings",
    "StoredRecord",
    "StoredState",
    "accepted_state",
    "expected_payload",
    "scope_of_key",
    "state_key",
    "stored_state",
]

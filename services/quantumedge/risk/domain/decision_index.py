"""The engine's memory of what it decided: the last N decisions (by id and by source) and its counters.

Pure (no I/O, no clock).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from quantumedge.v1 import risk_pb2


@dataclass
class Counters:
    signals_seen: int = 0
    reviews: int = 0
    approved: int = 0
    rejected: int = 0


class DecisionIndex:
    """The last N decisions by id (for ExplainDecision) and by source id (so redelivery repeats a decision)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._by_id: OrderedDict[str, tuple[str, risk_pb2.RiskDecision]] = OrderedDict()
        self._by_source: dict[str, str] = {}

    def add(self, source_id: str, decision: risk_pb2.RiskDecision) -> None:
        self._by_id[decision.decision_id] = (source_id, decision)
        self._by_source[source_id] = decision.decision_id
        while len(self._by_id) > self._size:
            old_id, (old_source, _) = self._by_id.popitem(last=False)
            if self._by_source.get(old_source) == old_id:
                del self._by_source[old_source]

    def get(self, decision_id: str) -> risk_pb2.RiskDecision | None:
        entry = self._by_id.get(decision_id)
        return entry[1] if entry else None

    def recent(self) -> list[risk_pb2.RiskDecision]:
        """Every indexed decision, newest first."""
        return [decision for _, decision in reversed(self._by_id.values())]

    def for_source(self, source_id: str) -> risk_pb2.RiskDecision | None:
        decision_id = self._by_source.get(source_id)
        return self.get(decision_id) if decision_id else None

    def __len__(self) -> int:
        return len(self._by_id)

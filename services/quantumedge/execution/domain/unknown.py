"""Orders whose outcome is unknown: when to ask the venue again, and when the bound has run out (pure).

A submission that timed out, or that Binance answered with -1006/-1007 or a 5xx, may have executed,
and may still execute later: Binance says -1007 "does not always mean that the request failed in the
Matching Engine", and that an order query may not reflect the matching engine yet. Such an order is
never sent again. It is resolved by the user data stream's execution reports, by order queries (by
origClientOrderId) on a backoff schedule, and by its trades. The bound is chosen longer than the
matching engine's own timeout; once it has run out the symbol takes exits only and an operator alert
is raised, and the order is still asked about (less often) until its fate is known.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from quantumedge.execution.domain.orders import Order
from quantumedge.shared.backoff import Backoff

OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"


@dataclass
class UnknownOutcomes:
    # How long an unknown order is resolved before its symbol goes to exits only (venue clock, ns).
    bound_ns: int = 60_000_000_000
    # Queries back off from ~0.5 s to 10 s within the bound, and to `late_cap_s` after it.
    backoff: Backoff = field(default_factory=lambda: Backoff(base_s=0.5, cap_s=10.0, rng=random.Random(0)))
    late_cap_s: float = 30.0
    _schedule: dict[str, tuple[int, int]] = field(default_factory=dict)
    _alerted: set[str] = field(default_factory=set)

    def expired(self, order: Order, now_ns: int) -> bool:
        """True once the order's outcome has been unknown for longer than the bound."""
        return order.outcome_unknown and now_ns - order.outcome_unknown_since_ns >= self.bound_ns

    def due(self, order: Order, now_ns: int) -> bool:
        """Whether to ask the venue about the order now."""
        return now_ns >= self._schedule.get(order.client_order_id, (0, 0))[1]

    def asked(self, order: Order, now_ns: int) -> None:
        """The venue did not show the order: the next question waits a little longer."""
        attempt, _ = self._schedule.get(order.client_order_id, (0, 0))
        delay_s = self.backoff.delay(attempt)
        if self.expired(order, now_ns):
            delay_s = min(max(delay_s, self.backoff.cap_s), self.late_cap_s)
        self._schedule[order.client_order_id] = (attempt + 1, now_ns + int(delay_s * 1e9))

    def needs_alert(self, order: Order, now_ns: int) -> bool:
        """True once per order (per process), when the bound has run out."""
        if not self.expired(order, now_ns) or order.client_order_id in self._alerted:
            return False
        self._alerted.add(order.client_order_id)
        return True

    def resolved(self, client_order_id: str) -> None:
        self._schedule.pop(client_order_id, None)
        self._alerted.discard(client_order_id)

    def exits_only(self, orders: Iterable[Order], now_ns: int) -> dict[str, str]:
        """symbol -> reason code, for every symbol with an order unknown past the bound."""
        return {o.symbol: OUTCOME_UNKNOWN for o in orders if self.expired(o, now_ns)}

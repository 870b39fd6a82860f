"""Trading states on control.v1: the signed "state:<scope>" records risk publishes and rebuilds from.

The records carry a scope's whole status (every cause in force), so the newest valid one per key is the
state: a restart, another risk instance and execution all read the same thing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantumedge.risk.domain.trading_state import ScopeStatus, TradingStates, scope_of_key
from quantumedge.v1 import common_pb2, control_pb2

if TYPE_CHECKING:
    from quantumedge.shared.admission import StoredState

# A scope whose records exist but none verifies: its state is unknown, so exits only (fail closed).
STATE_UNVERIFIED = "state_unverified"


def state_event(trading: TradingStates, scope: str, actor: common_pb2.Actor, reason: str) -> control_pb2.ControlEvent:
    """The record of one scope's status now (unsigned; the publisher signs it under its key)."""
    return control_pb2.ControlEvent(actor=actor, reason=reason, trading_state=trading.scope(scope).to_pb(scope))


def restore_states(trading: TradingStates, stored: StoredState, now_ns: int) -> list[str]:
    """Each scope's status from the newest valid record; returns the scopes held for an unverifiable one."""
    for key, event in stored.latest.items():
        scope = scope_of_key(key)
        if scope is not None and event.HasField("trading_state"):
            trading.replace(scope, ScopeStatus.from_pb(event.trading_state))
    unverified = []
    for key, code in stored.unverifiable.items():
        scope = scope_of_key(key)
        if scope is not None:
            trading.reduce(scope, STATE_UNVERIFIED, f"trading state on control.v1 failed verification ({code})", now_ns)
            unverified.append(scope)
    trading.changed()  # what was read back is on the topic already; only the fail-closed scopes are re-published
    for scope in unverified:
        trading.mark_changed(scope)
    return unverified

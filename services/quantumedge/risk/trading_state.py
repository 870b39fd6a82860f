"""Per-symbol trading state: what a symbol may do now, and why (pure, no I/O).

ACTIVE trades normally; REDUCING is exits only: entries are refused, exits and protection go on. Each
state change carries a reason code ("model_drift", ...) so a later account-wide HALTED state and other
causes of REDUCING slot in beside it without another flag.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from quantumedge.v1 import risk_pb2


class TradingState(enum.Enum):
    ACTIVE = risk_pb2.TRADING_STATE_ACTIVE
    REDUCING = risk_pb2.TRADING_STATE_REDUCING


MODEL_DRIFT = "model_drift"


@dataclass(frozen=True)
class SymbolStatus:
    state: TradingState
    reason_code: str = ""
    detail: str = ""
    since_ns: int = 0

    def to_pb(self, symbol: str) -> risk_pb2.SymbolTradingState:
        return risk_pb2.SymbolTradingState(
            symbol=symbol,
            state=self.state.value,
            reason_code=self.reason_code,
            detail=self.detail,
            since_ns=self.since_ns,
        )


ACTIVE = SymbolStatus(TradingState.ACTIVE)


class TradingStates:
    """Symbol -> status; a symbol never set is ACTIVE. A cause is lifted only by its own code."""

    def __init__(self) -> None:
        self._states: dict[str, SymbolStatus] = {}

    def get(self, symbol: str) -> SymbolStatus:
        return self._states.get(symbol, ACTIVE)

    def reduce(self, symbol: str, reason_code: str, detail: str, now_ns: int) -> bool:
        """Move to REDUCING for `reason_code`; True when the state changed."""
        current = self.get(symbol)
        if current.state is TradingState.REDUCING and current.reason_code == reason_code:
            if current.detail != detail:
                self._states[symbol] = SymbolStatus(TradingState.REDUCING, reason_code, detail, current.since_ns)
            return False
        self._states[symbol] = SymbolStatus(TradingState.REDUCING, reason_code, detail, now_ns)
        return True

    def lift(self, symbol: str, reason_code: str, now_ns: int) -> bool:
        """Back to ACTIVE when REDUCING was for `reason_code`; True when the state changed."""
        current = self.get(symbol)
        if current.state is TradingState.REDUCING and current.reason_code == reason_code:
            self._states[symbol] = SymbolStatus(TradingState.ACTIVE, "", "", now_ns)
            return True
        return False

    def to_pb(self) -> list[risk_pb2.SymbolTradingState]:
        return [st.to_pb(sym) for sym, st in sorted(self._states.items())]

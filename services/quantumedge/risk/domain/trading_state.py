"""Trading states ACTIVE / REDUCING / HALTED per symbol and for the whole account (pure, no I/O).

ACTIVE trades normally; REDUCING is exits only: entries are refused, exits, protection and flattening go on;
HALTED is the account's kill switch (the "halt" record, lifted by Resume only). A scope (a symbol, or
ACCOUNT for the whole account) is held in REDUCING by causes, each with a reason code ("operator",
"model_drift", ...): an automatic cause is lifted only by its own code (a clean signal does not undo an
operator's Reduce); the operator's Activate lifts every cause of the scope. A symbol may do what the
stronger of its own state and the account's allows.

Each scope is durable on control.v1 under "state:account" / "state:<SYMBOL>" (signed by risk, newest valid
wins); `changed()` names the scopes to publish after a step.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from quantumedge.shared.control_keys import scope_of_key, state_key
from quantumedge.v1 import risk_pb2

ACCOUNT = ""  # the scope of the whole account
MAX_SYMBOL_LEN = 32  # a Reduce / Activate naming a longer "symbol" is refused (bounded input)

# Reason codes of the causes of REDUCING.
OPERATOR = "operator"
MODEL_DRIFT = "model_drift"
MODEL_STALE = "model_stale"
SOFT_LOSS = "soft_loss"
VENUE_FAILING = "venue_failing"
# The code a refused entry's decision reason starts with (reasons.primary_code reads it).
EXITS_ONLY = "exits_only"


__all__ = ["ACCOUNT", "ScopeStatus", "TradingState", "TradingStates", "scope_of_key", "state_key"]


class TradingState(enum.IntEnum):
    ACTIVE = risk_pb2.TRADING_STATE_ACTIVE
    REDUCING = risk_pb2.TRADING_STATE_REDUCING
    HALTED = risk_pb2.TRADING_STATE_HALTED


def valid_scope(symbol: str) -> str:
    """ "" when `symbol` can name a scope (empty = the account), else why not."""
    if len(symbol) > MAX_SYMBOL_LEN:
        return f"symbol must be at most {MAX_SYMBOL_LEN} characters"
    # Upper case only: "state:account" (the account's key) can never collide with a symbol's.
    if symbol and not (symbol.isascii() and symbol.isalnum() and symbol == symbol.upper()):
        return "symbol must be upper-case letters and digits, like BTCUSDT (empty = the account)"
    return ""


@dataclass(frozen=True)
class Cause:
    detail: str
    since_ns: int


@dataclass
class ScopeStatus:
    causes: dict[str, Cause] = field(default_factory=dict)
    since_ns: int = 0  # when the state last changed

    @property
    def state(self) -> TradingState:
        return TradingState.REDUCING if self.causes else TradingState.ACTIVE

    @property
    def reason_code(self) -> str:
        """The oldest cause in force: what an operator reads first."""
        return min(self.causes, key=lambda code: (self.causes[code].since_ns, code)) if self.causes else ""

    def to_pb(self, scope: str) -> risk_pb2.SymbolTradingState:
        code = self.reason_code
        return risk_pb2.SymbolTradingState(
            symbol=scope,
            state=self.state.value,
            reason_code=code,
            detail=self.causes[code].detail if code else "",
            since_ns=self.since_ns,
            causes=[
                risk_pb2.StateCause(reason_code=k, detail=c.detail, since_ns=c.since_ns)
                for k, c in sorted(self.causes.items())
            ],
        )

    @classmethod
    def from_pb(cls, pb: risk_pb2.SymbolTradingState) -> ScopeStatus:
        causes = {c.reason_code: Cause(c.detail, c.since_ns) for c in pb.causes if c.reason_code}
        if pb.state != risk_pb2.TRADING_STATE_ACTIVE and not causes:
            # A REDUCING record with no cause list (or an unknown newer state): exits only all the same.
            causes[pb.reason_code or OPERATOR] = Cause(pb.detail, pb.since_ns)
        return cls(causes, pb.since_ns)


class TradingStates:
    """Scope -> status; a scope never set is ACTIVE."""

    def __init__(self) -> None:
        self._scopes: dict[str, ScopeStatus] = {}
        self._changed: set[str] = set()

    def scope(self, scope: str) -> ScopeStatus:
        return self._scopes.get(scope) or ScopeStatus()

    def get(self, symbol: str) -> ScopeStatus:
        return self.scope(symbol)

    def refusal(self, symbol: str) -> str:
        """Why an entry on `symbol` is refused by REDUCING (its own or the account's); "" when it may enter."""
        for scope, where in ((symbol, symbol), (ACCOUNT, "the account")):
            st = self.scope(scope)
            if st.causes:
                code = st.reason_code
                return f"{EXITS_ONLY}: {where} is REDUCING ({code}: {st.causes[code].detail})"
        return ""

    def reduce(self, scope: str, code: str, detail: str, now_ns: int) -> bool:
        """Hold `scope` in REDUCING for `code`; True when a cause was added (a detail change is no change)."""
        st = self._scopes.setdefault(scope, ScopeStatus())
        current = st.causes.get(code)
        if current is not None:
            if current.detail != detail:
                st.causes[code] = Cause(detail, current.since_ns)
            return False
        if not st.causes:
            st.since_ns = now_ns
        st.causes[code] = Cause(detail, now_ns)
        self._changed.add(scope)
        return True

    def lift(self, scope: str, code: str, now_ns: int) -> bool:
        """Drop one cause; True when it was there."""
        st = self._scopes.get(scope)
        if st is None or code not in st.causes:
            return False
        del st.causes[code]
        if not st.causes:
            st.since_ns = now_ns
        self._changed.add(scope)
        return True

    def activate(self, scope: str, now_ns: int) -> list[str]:
        """The operator's Activate: every cause of the scope lifted; returns their codes."""
        codes = sorted(self.scope(scope).causes)
        for code in codes:
            self.lift(scope, code, now_ns)
        return codes

    def replace(self, scope: str, status: ScopeStatus) -> None:
        """A scope's status from control.v1 (a rebuild, or another instance): taken as it is."""
        self._scopes[scope] = status

    def mark_changed(self, scope: str) -> None:
        self._changed.add(scope)

    def changed(self) -> list[str]:
        """Scopes changed since the last call (to publish)."""
        out = sorted(self._changed)
        self._changed.clear()
        return out

    def holding(self, code: str) -> list[str]:
        """The scopes a cause holds now."""
        return sorted(scope for scope, st in self._scopes.items() if code in st.causes)

    def to_pb(self) -> list[risk_pb2.SymbolTradingState]:
        """Symbols that were ever out of ACTIVE (the account is reported apart)."""
        return [st.to_pb(s) for s, st in sorted(self._scopes.items()) if s != ACCOUNT and (st.causes or st.since_ns)]

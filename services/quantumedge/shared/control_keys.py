"""The keys of control.v1 state records and the payload each must carry.

Pure (no lock, no I/O): risk's trading states use them without pulling in the admission gates' locks;
quantumedge.shared.admission re-exports them for its callers.
"""

from __future__ import annotations

HALT_KEY = "halt"
LIMITS_KEY = "limits"
STATE_KEYS = {HALT_KEY: "halt", LIMITS_KEY: "limits"}  # control.v1 record key -> the payload it must carry
# "state:account" / "state:<SYMBOL>": one scope's trading state (REDUCING and its causes, or ACTIVE).
TRADING_STATE_PREFIX = "state:"


def state_key(scope: str) -> str:
    """The control.v1 key of a scope's trading state: "state:account" ("" = the account) or "state:BTCUSDT"."""
    return TRADING_STATE_PREFIX + (scope or "account")


def scope_of_key(key: str) -> str | None:
    """The scope a control.v1 key names ("" for the account), or None when it is no trading-state key."""
    if not key.startswith(TRADING_STATE_PREFIX) or len(key) == len(TRADING_STATE_PREFIX):
        return None
    scope = key[len(TRADING_STATE_PREFIX) :]
    return "" if scope == "account" else scope


def expected_payload(key: str) -> str | None:
    """The payload a control.v1 state record under `key` must carry; None for a key that holds no state."""
    if key.startswith(TRADING_STATE_PREFIX) and len(key) > len(TRADING_STATE_PREFIX):
        return "trading_state"
    return STATE_KEYS.get(key)

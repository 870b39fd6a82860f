"""Stable reason codes for a decision's reasons (metrics labels, ListDecisions filters, the console).

A reason reads "<code>: <detail>" where the code is a limit or guard name ("max_spread_bps: ...",
"halted: ..."); the few phrased reasons map onto codes here. Pure: no I/O.
"""

from __future__ import annotations

import re

from quantumedge.v1 import risk_pb2

_CODE = re.compile(r"^[a-z][a-z0-9_]*$")
# Reasons phrased as sentences, by how they start.
_PHRASES = (
    ("entry already pending", "entry_pending"),
    ("exit already pending", "exit_pending"),
    ("already positioned", "already_positioned"),
    ("request already handled", "duplicate_request"),
)


def reason_code(reason: str) -> str:
    """The code of one reason: "max_spread_bps: BTCUSDT spread 3.1 bps > 2.0" -> "max_spread_bps"."""
    head = reason.split(":", 1)[0].strip().lower()
    if _CODE.match(head):
        return head
    for phrase, code in _PHRASES:
        if head.startswith(phrase):
            return code
    words = re.findall(r"[a-z0-9]+", head)[:3]
    return "_".join(words) or "unspecified"


def decision_codes(decision: risk_pb2.RiskDecision) -> list[str]:
    """Every reason code of a decision, in order, without repeats."""
    out: list[str] = []
    for reason in decision.reasons:
        code = reason_code(reason)
        if code not in out:
            out.append(code)
    return out


def primary_code(decision: risk_pb2.RiskDecision) -> str:
    """The code that decided it: "approved" for an approval, else the first failing check."""
    if decision.approved:
        return "approved"
    codes = decision_codes(decision)
    return codes[0] if codes else "unspecified"


def matches(decision: risk_pb2.RiskDecision, symbol: str = "", outcome: str = "", reason: str = "") -> bool:
    """The ListDecisions filter: symbol, outcome ("approved" / "rejected" / ""), and a reason code."""
    if symbol and decision.symbol != symbol.upper():
        return False
    if outcome == "approved" and not decision.approved:
        return False
    if outcome == "rejected" and decision.approved:
        return False
    return not reason or reason in decision_codes(decision)

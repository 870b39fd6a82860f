"""Client order ids derived from what caused the order, so a redelivered cause never makes a second order.

Binance accepts `^[.A-Z:/a-z0-9_-]{1,36}$`. Ids here are "qe" + a kind letter + 22 hex characters of
SHA-256 over the cause (25 characters), and protective legs append a 3-character suffix (28), well
inside the limit. The "qe" prefix tells our orders apart from a human's on the same account.
"""

from __future__ import annotations

import hashlib
import re

PREFIX = "qe"
ALLOWED = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")

ENTRY = "E"
EXIT = "X"
FLATTEN = "F"
TIME_STOP = "T"

TAKE_PROFIT_SUFFIX = "-tp"
STOP_LOSS_SUFFIX = "-sl"
OCO_LIST_SUFFIX = "-oc"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:22]


def order_id(kind: str, *cause: str) -> str:
    """The client order id for `kind` (ENTRY, EXIT, ...) caused by `cause` (intent id, request id, ...)."""
    if not cause or not all(cause):
        raise ValueError("a client order id needs a non-empty cause")
    cid = f"{PREFIX}{kind}{_digest(kind, *cause)}"
    assert ALLOWED.match(cid)
    return cid


def protective_ids(entry_client_order_id: str, generation: int = 0) -> tuple[str, str, str]:
    """(take-profit leg, stop-loss leg, OCO list) ids of an entry's protection. Protection placed again
    (for what an exit left, or grown with a filling entry) is a new generation with ids of its own:
    "<entry>.<n>-tp" (at most 25 + 4 + 3 characters)."""
    base = entry_client_order_id if generation <= 0 else f"{entry_client_order_id}.{generation}"
    return base + TAKE_PROFIT_SUFFIX, base + STOP_LOSS_SUFFIX, base + OCO_LIST_SUFFIX


def protected_entry(leg_client_order_id: str) -> str:
    """The entry a protective leg's id belongs to (its generation marker dropped)."""
    return leg_client_order_id[: -len(TAKE_PROFIT_SUFFIX)].split(".", 1)[0]


def is_ours(client_order_id: str) -> bool:
    return client_order_id.startswith(PREFIX) and bool(ALLOWED.match(client_order_id))

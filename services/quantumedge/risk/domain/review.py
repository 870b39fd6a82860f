"""Manual orders (ReviewIntent): what makes one valid, whether it closes the position, the price it is sized at.

Pure (no I/O, no clock): the engine runs the gates and limits; these are the manual order's own facts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from quantumedge.risk.domain.market import SymbolMarket
from quantumedge.v1 import common_pb2, risk_pb2


class InvalidIntentError(ValueError):
    """A manual intent that cannot be reviewed; the message names the field."""


def validate_intent(intent: risk_pb2.OrderIntent) -> None:
    if not intent.intent_id:
        raise InvalidIntentError("intent.intent_id is required (derive it from the request id)")
    if not intent.symbol:
        raise InvalidIntentError("intent.symbol is required")
    if intent.side not in (common_pb2.SIDE_BUY, common_pb2.SIDE_SELL):
        raise InvalidIntentError("intent.side must be SIDE_BUY or SIDE_SELL")
    if not math.isfinite(intent.quantity) or intent.quantity <= 0:
        raise InvalidIntentError(f"intent.quantity must be a positive number, got {intent.quantity}")
    if intent.order_type == risk_pb2.ORDER_TYPE_LIMIT and not (
        math.isfinite(intent.limit_price) and intent.limit_price > 0
    ):
        raise InvalidIntentError(f"intent.limit_price must be > 0 for a limit order, got {intent.limit_price}")
    for name in ("take_profit_price", "stop_loss_price", "limit_price"):
        value = getattr(intent, name)
        if not math.isfinite(value) or value < 0:
            raise InvalidIntentError(f"intent.{name} must be a non-negative number, got {value}")


@dataclass(frozen=True)
class Closing:
    """How a manual order stands against the position it meets."""

    position: float
    pending_exit: float  # exits already approved and not yet done
    reduces: bool  # its side closes the position
    closable: float  # what is still there to close
    fits: bool  # its quantity is within what is closable

    @classmethod
    def of(cls, intent: risk_pb2.OrderIntent, position: float, pending_exit: float) -> Closing:
        reduces = position != 0 and (position > 0) == (intent.side == common_pb2.SIDE_SELL)
        closable = max(0.0, abs(position) - pending_exit) if reduces else 0.0
        return cls(position, pending_exit, reduces, closable, intent.quantity <= closable * (1 + 1e-9))

    def kind(self, intent: risk_pb2.OrderIntent) -> int:
        """The intent's kind; unspecified is an exit when it closes within the position, else an entry."""
        if intent.kind != risk_pb2.INTENT_KIND_UNSPECIFIED:
            return intent.kind
        return risk_pb2.INTENT_KIND_EXIT if self.reduces and self.fits else risk_pb2.INTENT_KIND_ENTRY

    def exit_refusal(self, intent: risk_pb2.OrderIntent) -> list[str]:
        """Why a manual exit cannot go (empty: it can)."""
        if self.reduces and self.fits:
            return []
        return [
            f"exit_exceeds_position: {intent.quantity:g} against position {self.position:g} on {intent.symbol}"
            + (f" with {self.pending_exit:g} already being closed" if self.pending_exit else "")
        ]

    def short_refusal(self, intent: risk_pb2.OrderIntent, allow_short: bool) -> list[str]:
        """Why a manual SELL entry would open or grow a short while shorts are disabled (empty: it would not)."""
        if intent.side != common_pb2.SIDE_SELL or allow_short:
            return []
        if not self.reduces:
            return ["allow_short: manual SELL with no position to close and shorts are disabled"]
        if not self.fits:
            return [
                f"allow_short: manual SELL of {intent.quantity:g} exceeds the {self.closable:g} {intent.symbol} that"
                " can be closed and shorts are disabled"
            ]
        return []


def review_reference(intent: risk_pb2.OrderIntent, book: SymbolMarket) -> float:
    """The price a manual order is sized and checked at."""
    market = book.mid or book.mark
    if intent.order_type != risk_pb2.ORDER_TYPE_LIMIT:
        return market
    # A SELL limit below the market trades at the market: its size is at least that much money.
    return max(intent.limit_price, market) if intent.side == common_pb2.SIDE_SELL else intent.limit_price

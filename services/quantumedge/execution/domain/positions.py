"""A net position in one symbol: pure domain code (no I/O), shared with the backtester."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from quantumedge.execution.domain.orders import ZERO, Fill, Side


@dataclass
class Position:
    """Net position in one symbol. realized_pnl is net of fees; fees is their running total (quote asset)."""

    symbol: str
    quantity: Decimal = ZERO
    average_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    mark_price: Decimal = ZERO
    # Spot venues: base-asset balance QuantumEdge does not manage (held before it started).
    baseline_quantity: Decimal = ZERO
    baseline_set: bool = False
    updated_time_ns: int = 0
    # The part of `quantity` (same sign) the venue will not trade: below its lot size or minimum notional.
    # Commissions taken in the base asset leave it behind; it is held and marked, but never traded.
    dust_quantity: Decimal = ZERO

    @property
    def tradable_quantity(self) -> Decimal:
        return self.quantity - self.dust_quantity

    @property
    def unrealized_pnl(self) -> Decimal:
        if not self.quantity or not self.mark_price:
            return ZERO
        return (self.mark_price - self.average_price) * self.quantity

    @property
    def flat(self) -> bool:
        return self.quantity == 0

    def set_baseline(self, balance: Decimal) -> None:
        """First sight of the account: what it holds beyond this position is not ours to manage."""
        self.baseline_quantity = balance - self.quantity
        self.baseline_set = True

    def correct_to(self, quantity: Decimal, mark: Decimal) -> None:
        """The venue's balance says the position is `quantity`: a new or reversed one is priced at `mark`."""
        old = self.quantity
        if quantity == 0:
            self.average_price = ZERO
        elif old == 0 or (old > 0) != (quantity > 0):
            self.average_price = mark
        self.quantity = quantity

    def set_dust(self, dust: Decimal) -> None:
        """The part the venue will not trade (same sign as the position)."""
        self.dust_quantity = dust

    def apply_fill(self, side: Side, fill: Fill) -> Decimal:
        """Net the fill into the position; return the realised PnL it adds (net of its fee).

        Crossing through zero closes the old side at its average and opens the rest at the fill price.
        A commission taken in the base asset shrinks the holding without realising anything: its value
        is already counted in fee_quote.
        """
        signed = fill.quantity * side.sign
        gross = ZERO
        was_flat = self.quantity == 0
        if self.quantity == 0 or (self.quantity > 0) == (signed > 0):
            total = abs(self.quantity) + abs(signed)
            self.average_price = (abs(self.quantity) * self.average_price + abs(signed) * fill.price) / total
            self.quantity += signed
        else:
            closed = min(abs(signed), abs(self.quantity))
            direction = 1 if self.quantity > 0 else -1
            gross = closed * (fill.price - self.average_price) * direction
            self.quantity += signed
            if self.quantity == 0:
                self.average_price = ZERO
            elif (self.quantity > 0) != (direction > 0):
                self.average_price = fill.price
        if fill.base_fee:
            self.quantity -= fill.base_fee
            if self.quantity == 0:
                self.average_price = ZERO
        delta = gross - fill.fee_quote
        self.realized_pnl += delta
        self.fees += fill.fee_quote
        if fill.price and (not self.mark_price or was_flat):
            # A position opened from flat must not keep the mark of its previous life (marks skip flat ones).
            self.mark_price = fill.price
        if fill.time_ns:
            self.updated_time_ns = max(self.updated_time_ns, fill.time_ns)
        return delta

    def mark(self, price: Decimal, time_ns: int = 0) -> None:
        self.mark_price = price
        if time_ns:
            self.updated_time_ns = max(self.updated_time_ns, time_ns)

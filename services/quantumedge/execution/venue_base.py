"""The Venue interface every venue implements: paper (venue_paper.py), Binance spot testnet and live
(venue_binance.py). Every method returns the order updates it learned, so the engine has one path for what
the venue says, whether from a response, a query or the user data stream."""

from __future__ import annotations

import abc
import enum
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal

from quantumedge.execution.domain.filters import SymbolFilters
from quantumedge.execution.domain.orders import (
    ZERO,
    Fill,
    OcoRequest,
    Order,
    OrderRequest,
    OrderSnapshot,
    OrderStatus,
    OrderUpdate,
)
from quantumedge.execution.errors import VenueError
from quantumedge.shared.logs import get_logger
from quantumedge.v1 import market_pb2

# The old module's logger name: operators' log filters keep matching after the split.
log = get_logger("quantumedge.execution.venue")

UpdateSink = Callable[[OrderUpdate], None]
ResyncSink = Callable[[], None]


class Recovery(enum.Enum):
    """What a venue did with an order the engine had open before a restart (Venue.recover)."""

    QUERY = "query"  # the venue kept its own state: ask it what became of the order
    RESTORED = "restored"  # the venue kept nothing and took the order back as it was: local state is the truth
    NEVER_SENT = "never_sent"  # the venue kept nothing and the order had not reached it: it cannot have it


class Venue(abc.ABC):
    name: str = ""
    # True when the venue signs with an exchange key it can swap while running (update_credentials).
    follows_key_rotation: bool = False

    def start(self, on_update: UpdateSink, on_resync: ResyncSink) -> None:  # noqa: B027 - optional hook
        """Connect (time sync, exchange info, user data stream). Updates arriving later go to on_update."""

    def stop(self) -> None:  # noqa: B027 - optional hook
        pass

    @abc.abstractmethod
    def filters(self, symbol: str) -> SymbolFilters: ...

    @abc.abstractmethod
    def submit(self, request: OrderRequest) -> list[OrderUpdate]:
        """Place one order; VenueRejected when refused; OutcomeUnknown when it could not be resolved."""

    @abc.abstractmethod
    def submit_oco(self, request: OcoRequest) -> list[OrderUpdate]: ...

    @abc.abstractmethod
    def cancel(self, symbol: str, client_order_id: str) -> list[OrderUpdate]:
        """Cancel one order (an OCO leg cancels its list); OrderNotFound when it is not open there."""

    @abc.abstractmethod
    def query(self, symbol: str, client_order_id: str) -> OrderSnapshot | None: ...

    @abc.abstractmethod
    def open_orders(self, symbol: str | None = None) -> list[OrderSnapshot]: ...

    def order_fills(self, snapshot: OrderSnapshot) -> list[Fill]:
        """Every fill of an order (to recover fills missed while down)."""
        return []

    def snapshot_updates(self, snapshot: OrderSnapshot, note: str = "") -> list[OrderUpdate]:
        """Updates that bring a local order to the snapshot: its fills (from myTrades), then its status."""
        updates: list[OrderUpdate] = []
        if snapshot.executed_quantity > 0:
            cum = ZERO
            try:
                fills = self.order_fills(snapshot)
            except VenueError as exc:
                # The status update below carries the cumulative quantity: the engine catches up from it.
                log.warning(
                    "order fills unavailable; catching up from the cumulative quantity",
                    extra={"order": snapshot.client_order_id, "error": str(exc)},
                )
                fills = []
            for fill in fills:
                cum += fill.quantity
                status = OrderStatus.FILLED if cum >= snapshot.quantity else OrderStatus.PARTIALLY_FILLED
                updates.append(
                    OrderUpdate(
                        snapshot.client_order_id, snapshot.symbol, status, snapshot.venue_order_id, fill, fill.time_ns
                    )
                )
        updates.append(
            OrderUpdate(
                snapshot.client_order_id,
                snapshot.symbol,
                snapshot.status,
                snapshot.venue_order_id,
                time_ns=snapshot.time_ns,
                executed_quantity=snapshot.executed_quantity,
                executed_quote=snapshot.executed_quote,
                note=note,
            )
        )
        return updates

    def base_balances(self, symbols: Iterable[str]) -> dict[str, Decimal] | None:
        """Total base-asset balance per symbol, or None for a venue whose positions are ours alone (paper)."""
        return None

    def on_market(self, event: market_pb2.MarketEvent) -> list[OrderUpdate]:
        return []

    def advance(self, now_ns: int) -> list[OrderUpdate]:
        """A simulated venue's clock moves to now_ns (orders in flight arrive); real venues keep their own."""
        return []

    def average_price(self, symbol: str) -> Decimal:
        """The venue's average price that PERCENT_PRICE_BY_SIDE checks against (0 = use the mark)."""
        return ZERO

    def now_ns(self) -> int:
        return time.time_ns()

    def safe_to_forget(self, sent_time_ms: int) -> bool:
        """True once a request signed at sent_time_ms can no longer be executed (its recvWindow passed)."""
        return True

    def update_credentials(self, credentials: Mapping[str, str]) -> None:
        """A rotated exchange key (only called when follows_key_rotation): a keyless venue has none to swap."""
        raise NotImplementedError(f"the {self.name} venue signs with no exchange key")

    def recover(self, order: Order) -> Recovery:
        """An order open locally before a restart: a real venue kept it (or its fate), so the engine asks it."""
        return Recovery.QUERY

    def adoptable_orders(self) -> list[OrderSnapshot]:
        """Open orders on the venue that the engine may have lost (it adopts the ones with our ids)."""
        return self.open_orders()

    def protects_on_reconcile(self) -> bool:
        """True when protection missing after a restart can be placed at once (the venue has its book)."""
        return True

    def trailing_peak(self, client_order_id: str) -> Decimal:
        """A simulated trailing stop's ratchet (0 = none, or the venue keeps it itself, as Binance does)."""
        return ZERO

    @property
    def connected(self) -> bool:
        return True

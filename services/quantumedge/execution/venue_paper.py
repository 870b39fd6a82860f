"""The paper venue: the fill simulator (paper.py) behind the Venue interface."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from quantumedge.execution.domain.filters import SymbolFilters
from quantumedge.execution.domain.orders import OcoRequest, Order, OrderRequest, OrderSnapshot, OrderStatus, OrderUpdate
from quantumedge.execution.paper import FillSimulator, PaperConfig
from quantumedge.execution.venue_base import Recovery, Venue
from quantumedge.v1 import market_pb2

if TYPE_CHECKING:
    from quantumedge.settings import Settings


class PaperVenue(Venue):
    name = "paper"

    def __init__(self, config: PaperConfig | None = None, filters_for: Callable[[str], SymbolFilters] | None = None):
        self.sim = FillSimulator(config)
        self._filters_for = filters_for or SymbolFilters.simple
        self._filters: dict[str, SymbolFilters] = {}

    def filters(self, symbol: str) -> SymbolFilters:
        if symbol not in self._filters:
            self._filters[symbol] = self._filters_for(symbol)
        return self._filters[symbol]

    def submit(self, request: OrderRequest) -> list[OrderUpdate]:
        return self.sim.submit(request)

    def submit_oco(self, request: OcoRequest) -> list[OrderUpdate]:
        return self.sim.submit_oco(request)

    def cancel(self, symbol: str, client_order_id: str) -> list[OrderUpdate]:
        return self.sim.cancel(client_order_id)

    def query(self, symbol: str, client_order_id: str) -> OrderSnapshot | None:
        return self.sim.query(client_order_id)

    def open_orders(self, symbol: str | None = None) -> list[OrderSnapshot]:
        return self.sim.open_orders(symbol)

    def on_market(self, event: market_pb2.MarketEvent) -> list[OrderUpdate]:
        return self.sim.on_market(event)

    def advance(self, now_ns: int) -> list[OrderUpdate]:
        return self.sim.advance(now_ns)

    def now_ns(self) -> int:
        return self.sim.now_ns

    def recover(self, order: Order) -> Recovery:
        """The simulator keeps nothing across a restart: an order it had accepted is put back as the engine
        knew it; one still PENDING never reached it (the simulator answers every send at once)."""
        if order.status is OrderStatus.PENDING:
            return Recovery.NEVER_SENT
        self.sim.restore(
            OrderRequest.of(order), order.filled_quantity, order.filled_quote, order.group_id, order.trailing_peak
        )
        return Recovery.RESTORED

    def adoptable_orders(self) -> list[OrderSnapshot]:
        """None: after a restart the simulator holds only what recover() put back, all of it known locally."""
        return []

    def protects_on_reconcile(self) -> bool:
        """False: no book yet after a restart, so protection is placed on the first market event."""
        return False

    def trailing_peak(self, client_order_id: str) -> Decimal:
        return self.sim.trailing_peak(client_order_id)


def paper_venue(settings: Settings) -> PaperVenue:
    """The paper venue with the fee, latency, queue, slippage and filter model of `settings.execution`."""
    cfg = settings.execution
    config = PaperConfig(
        maker_fee_bps=Decimal(repr(cfg.paper_maker_fee_bps)),
        taker_fee_bps=Decimal(repr(cfg.paper_taker_fee_bps)),
        latency_ns=int(cfg.paper_latency_ms * 1_000_000),
        slippage_bps=Decimal(repr(cfg.paper_slippage_bps)),
        queue_position=cfg.paper_queue_position,
        fee_asset=cfg.paper_fee_asset,
        bnb_discount=Decimal(repr(cfg.paper_bnb_discount)),
        bnb_price=Decimal(repr(cfg.paper_bnb_price)),
    )
    return PaperVenue(
        config,
        lambda symbol: SymbolFilters.simple(symbol, cfg.paper_tick_size, cfg.paper_step_size, cfg.paper_min_notional),
    )

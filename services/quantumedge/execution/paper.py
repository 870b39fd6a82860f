"""Paper fill simulator: orders filled against the live top of book and depth, driven by market events.

Pure domain code with an explicit clock (the market events' time), so the backtester and the paper
venue run exactly this. Model:
- order-entry latency: an order reaches the venue `latency_ns` after it is sent (simulated time); only
  then is it acknowledged (or refused) and can it trade, against the book as it is at that moment;
- takers walk the book's levels (market orders, crossing limits, triggered stops), paying the taker
  fee and `slippage_bps` on each level; liquidity taken stays taken until the next book update;
- a market order that exhausts the book expires with what it got (Binance does the same);
- IOC fills what it can and expires the rest; FOK fills entirely or expires with nothing;
- post-only (LIMIT_MAKER) that would take is refused with -2010, as Binance does (at arrival);
- a resting limit fills as a maker at its own price when the opposite side touches it or a trade prints
  through it (quantity capped by that liquidity), paying the maker fee; with `queue_position` it also
  fills from trades at its own price, but only once the volume that was ahead of it there has traded
  (the level's size when it arrived, shrunk by trades at that price and by the level shrinking);
- commissions are charged in the asset Binance charges them in (`fee_asset`): a buy pays in the base
  asset it receives (the holding grows by less than the fill), a sell in the quote asset; or all in
  the quote asset; or in BNB at a discount;
- stop-market orders trigger on the last trade price (the touch for feeds without trades), optionally trailing;
- OCO legs cancel each other: the first fill or trigger of one leg expires the other; a list one of
  whose legs is refused on arrival is refused whole.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from decimal import Decimal

from quantumedge.execution.domain.orders import (
    ZERO,
    OcoRequest,
    OrderRequest,
    OrderSnapshot,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    dec,
)
from quantumedge.execution.domain.paper_model import (
    INF,
    POST_ONLY_REJECT,
    PaperBook,
    PaperConfig,
)
from quantumedge.execution.errors import OrderNotFound, VenueRejected
from quantumedge.execution.paper_matching import PaperMatching, SimOrder, trail
from quantumedge.v1 import market_pb2

__all__ = ["FillSimulator", "PaperConfig"]


class FillSimulator(PaperMatching):
    """One simulated venue for any number of symbols. Every call returns the order updates it caused."""

    def __init__(self, config: PaperConfig | None = None) -> None:
        self.config = config or PaperConfig()
        self.now_ns = 0
        self._books: dict[str, PaperBook] = {}
        self._orders: dict[str, SimOrder] = {}
        # Open orders by symbol and orders still in flight: every event touches only these.
        self._open: dict[str, dict[str, SimOrder]] = {}
        self._in_flight: list[SimOrder] = []
        self._groups: dict[str, list[str]] = {}
        self._ids = itertools.count(1)
        self._trade_ids = itertools.count(1)

    # -- market data ------------------------------------------------------------------------------
    def book(self, symbol: str) -> PaperBook:
        book = self._books.get(symbol)
        if book is None:  # not setdefault(symbol, PaperBook()): that builds a book on every call
            book = self._books[symbol] = PaperBook()
        return book

    def on_market(self, event: market_pb2.MarketEvent) -> list[OrderUpdate]:
        """Apply one market event: first the arrivals due before it, then the event, then what it triggers."""
        time_ns = event.exchange_time_ns or event.receive_time_ns
        # Orders that reached the venue before this event trade on the book they met; those arriving at
        # this very time see the event (the book at t + latency is the book after every event up to it).
        updates = self._arrivals(time_ns, inclusive=False)
        updates += self._on_event(event)
        return updates + self._arrivals(time_ns, inclusive=True)

    def _on_event(self, event: market_pb2.MarketEvent) -> list[OrderUpdate]:
        book = self.book(event.symbol)
        kind = event.WhichOneof("payload")
        trade_price: Decimal | None = None
        trade_qty = ZERO
        updates: list[OrderUpdate] = []
        if kind == "trade":
            trade_price, trade_qty = dec(event.trade.price), dec(event.trade.quantity)
            book.last_trade = trade_price
            book.last_buyer_is_maker = event.trade.buyer_is_maker
        elif kind == "top_of_book":
            t = event.top_of_book
            book.top = (dec(t.bid_price), dec(t.bid_quantity), dec(t.ask_price), dec(t.ask_quantity))
            book.rebuild()
        elif kind == "depth":
            depth = event.depth
            book.set_depth(
                [(lv.price, lv.quantity) for lv in depth.bids], [(lv.price, lv.quantity) for lv in depth.asks]
            )
            book.top = None  # the depth snapshot is newer than the last top of book
            book.rebuild()
        else:
            return updates
        updates += self._match_resting(event.symbol, trade_price, trade_qty)
        return updates

    def advance(self, now_ns: int) -> list[OrderUpdate]:
        """Move the clock to now_ns; orders whose latency has elapsed by then arrive and trade."""
        return self._arrivals(now_ns, inclusive=True)

    def _arrivals(self, now_ns: int, inclusive: bool) -> list[OrderUpdate]:
        updates: list[OrderUpdate] = []
        if self._in_flight:
            due = sorted(
                (
                    o
                    for o in self._in_flight
                    if o.status.open and (o.arrival_ns <= now_ns if inclusive else o.arrival_ns < now_ns)
                ),
                key=lambda o: (o.arrival_ns, int(o.venue_order_id)),
            )
            arrived = {id(o) for o in due}
            self._in_flight = [o for o in self._in_flight if o.status.open and id(o) not in arrived]
            for order in due:
                if order.status.open:  # a sibling refused on arrival may have refused it too
                    # Each order meets the venue at its own arrival time; its updates carry that time.
                    self.now_ns = max(self.now_ns, order.arrival_ns)
                    updates += self._arrive(order)
        if now_ns > self.now_ns:
            self.now_ns = now_ns
        return updates

    def _arrive(self, order: SimOrder) -> list[OrderUpdate]:
        """The venue receives an order sent earlier: it answers (NEW, or -2010 for a post-only that would
        take) and the order trades from here on."""
        order.arrived = True
        if order.request.post_only and self._would_take(order.request):
            return self._refuse_on_arrival(order)
        return [self._update(order), *self._on_arrival(order)]

    def _refuse_on_arrival(self, order: SimOrder) -> list[OrderUpdate]:
        members = [order]
        if order.group_id:
            # Binance refuses an order list whole: the other leg goes with it.
            members = [self._orders[c] for c in self._groups.get(order.group_id, []) if self._orders[c].status.open]
        updates = []
        for member in members:
            member.status = OrderStatus.REJECTED
            updates.append(self._update(member, reject=POST_ONLY_REJECT))
        return updates

    # -- orders -----------------------------------------------------------------------------------
    def submit(self, request: OrderRequest, group_id: str = "") -> list[OrderUpdate]:
        """Accept an order (NEW) and, with no latency, trade it at once. VenueRejected if invalid."""
        if request.client_order_id in self._orders and self._orders[request.client_order_id].status.open:
            raise VenueRejected("-2010", "Duplicate order sent.")
        book = self.book(request.symbol)
        is_stop = bool(request.stop_price or request.trailing_stop_bps)
        if request.order_type is OrderType.MARKET and not is_stop and not book.levels(request.side):
            raise VenueRejected("-2010", f"paper: no market data for {request.symbol} yet")
        if request.post_only and self.config.latency_ns == 0 and self._would_take(request):
            raise VenueRejected(*POST_ONLY_REJECT)
        order = SimOrder(
            request=request,
            venue_order_id=str(next(self._ids)),
            arrival_ns=self.now_ns + self.config.latency_ns,
            group_id=group_id,
            stop=request.stop_price,
        )
        self._orders[request.client_order_id] = order
        self._open.setdefault(request.symbol, {})[request.client_order_id] = order
        if self.config.latency_ns == 0:
            return self._arrive(order)
        # The venue's answer comes when the order gets there: until then the sender knows nothing.
        self._in_flight.append(order)
        return []

    def submit_oco(self, request: OcoRequest) -> list[OrderUpdate]:
        """Both legs or neither: the price relation is checked against the last price like Binance does."""
        ref = self._reference(request.symbol)
        tp, sl = request.take_profit_price, request.stop_loss_price
        if not ref:
            raise VenueRejected("-2010", f"paper: no market data for {request.symbol} yet")
        ok = (tp > ref > sl) if request.side is Side.SELL else (tp < ref < sl)
        if not ok:
            raise VenueRejected("-2010", "The relationship of the prices for the orders is not correct.")
        for cid in (request.take_profit_client_order_id, request.stop_loss_client_order_id):
            if cid in self._orders and self._orders[cid].status.open:
                raise VenueRejected("-2010", "Duplicate order sent.")
        take_profit = OrderRequest(
            client_order_id=request.take_profit_client_order_id,
            symbol=request.symbol,
            side=request.side,
            order_type=OrderType.LIMIT,
            quantity=request.quantity,
            price=tp,
            time_in_force=TimeInForce.GTC,
            post_only=True,
        )
        stop_loss = OrderRequest(
            client_order_id=request.stop_loss_client_order_id,
            symbol=request.symbol,
            side=request.side,
            order_type=OrderType.MARKET,
            quantity=request.quantity,
            stop_price=sl,
            trailing_stop_bps=request.trailing_stop_bps,
        )
        self._groups[request.list_client_order_id] = [take_profit.client_order_id, stop_loss.client_order_id]
        updates = self.submit(take_profit, group_id=request.list_client_order_id)
        updates += self.submit(stop_loss, group_id=request.list_client_order_id)
        return updates

    def cancel(self, client_order_id: str) -> list[OrderUpdate]:
        """Cancel an open order; cancelling one OCO leg cancels the whole list (as on Binance)."""
        order = self._orders.get(client_order_id)
        if order is None or not order.status.open:
            raise OrderNotFound("-2011", "Unknown order sent.")
        targets = [order]
        if order.group_id:
            targets = [self._orders[c] for c in self._groups.get(order.group_id, []) if self._orders[c].status.open]
        updates = []
        for target in targets:
            target.status = OrderStatus.CANCELED
            updates.append(self._update(target))
        return updates

    def query(self, client_order_id: str) -> OrderSnapshot | None:
        order = self._orders.get(client_order_id)
        return None if order is None else self._snapshot(order)

    def open_orders(self, symbol: str | None = None) -> list[OrderSnapshot]:
        return [
            self._snapshot(o)
            for o in self._orders.values()
            if o.status.open and (symbol is None or o.request.symbol == symbol)
        ]

    def trailing_peak(self, client_order_id: str) -> Decimal:
        """The best trade price a resting trailing stop has seen (its ratchet), 0 before the first."""
        order = self._orders.get(client_order_id)
        return order.peak if order is not None and order.request.trailing_stop_bps else ZERO

    def restore(
        self, request: OrderRequest, filled: Decimal, filled_quote: Decimal, group_id: str = "", peak: Decimal = ZERO
    ) -> None:
        """Re-insert an order that was resting before a restart (the simulator keeps no state of its own);
        a trailing stop resumes from the ratchet it had reached (`peak`)."""
        order = SimOrder(
            request=request,
            venue_order_id=str(next(self._ids)),
            arrival_ns=self.now_ns,
            status=OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.NEW,
            filled=filled,
            filled_quote=filled_quote,
            arrived=True,
            group_id=group_id,
            stop=request.stop_price,
        )
        if peak and request.trailing_stop_bps:
            trail(order, peak)
        if self.config.queue_position and request.order_type is OrderType.LIMIT:
            order.queue_ahead = INF  # where it stood in the queue is not known: behind everything visible
        self._orders[request.client_order_id] = order
        self._open.setdefault(request.symbol, {})[request.client_order_id] = order
        if group_id:
            self._groups.setdefault(group_id, []).append(request.client_order_id)

    def orders(self) -> Iterable[OrderSnapshot]:
        return [self._snapshot(o) for o in self._orders.values()]

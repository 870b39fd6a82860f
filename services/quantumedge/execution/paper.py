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
from dataclasses import dataclass
from decimal import Decimal

from quantumedge.execution.errors import OrderNotFound, VenueRejected
from quantumedge.execution.orders import (
    ZERO,
    Fill,
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
from quantumedge.execution.paper_model import (
    BPS,
    INF,
    POST_ONLY_REJECT,
    PaperBook,
    PaperConfig,
    commission,
    visible_at,
)
from quantumedge.v1 import market_pb2

__all__ = ["FillSimulator", "PaperConfig"]


@dataclass
class _SimOrder:
    request: OrderRequest
    venue_order_id: str
    arrival_ns: int
    status: OrderStatus = OrderStatus.NEW
    filled: Decimal = ZERO
    filled_quote: Decimal = ZERO
    arrived: bool = False
    triggered: bool = False
    stop: Decimal = ZERO
    peak: Decimal = ZERO
    group_id: str = ""
    # Volume ahead of this resting order at its price (None: not modelled; INF: beyond the visible book).
    queue_ahead: Decimal | None = None

    @property
    def remaining(self) -> Decimal:
        return self.request.quantity - self.filled

    @property
    def is_stop(self) -> bool:
        req = self.request
        return req.order_type is OrderType.MARKET and bool(req.stop_price or req.trailing_stop_bps)


class FillSimulator:
    """One simulated venue for any number of symbols. Every call returns the order updates it caused."""

    def __init__(self, config: PaperConfig | None = None) -> None:
        self.config = config or PaperConfig()
        self.now_ns = 0
        self._books: dict[str, PaperBook] = {}
        self._orders: dict[str, _SimOrder] = {}
        # Open orders by symbol and orders still in flight: every event touches only these.
        self._open: dict[str, dict[str, _SimOrder]] = {}
        self._in_flight: list[_SimOrder] = []
        self._groups: dict[str, list[str]] = {}
        self._ids = itertools.count(1)
        self._trade_ids = itertools.count(1)

    # -- market data ------------------------------------------------------------------------------
    def book(self, symbol: str) -> PaperBook:
        return self._books.setdefault(symbol, PaperBook())

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
            book.depth_bids = [(dec(lv.price), dec(lv.quantity)) for lv in event.depth.bids]
            book.depth_asks = [(dec(lv.price), dec(lv.quantity)) for lv in event.depth.asks]
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

    def _arrive(self, order: _SimOrder) -> list[OrderUpdate]:
        """The venue receives an order sent earlier: it answers (NEW, or -2010 for a post-only that would
        take) and the order trades from here on."""
        order.arrived = True
        if order.request.post_only and self._would_take(order.request):
            return self._refuse_on_arrival(order)
        return [self._update(order), *self._on_arrival(order)]

    def _refuse_on_arrival(self, order: _SimOrder) -> list[OrderUpdate]:
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
        order = _SimOrder(
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
        order = _SimOrder(
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
            _trail(order, peak)
        if self.config.queue_position and request.order_type is OrderType.LIMIT:
            order.queue_ahead = INF  # where it stood in the queue is not known: behind everything visible
        self._orders[request.client_order_id] = order
        self._open.setdefault(request.symbol, {})[request.client_order_id] = order
        if group_id:
            self._groups.setdefault(group_id, []).append(request.client_order_id)

    # -- matching ---------------------------------------------------------------------------------
    def _on_arrival(self, order: _SimOrder) -> list[OrderUpdate]:
        req = order.request
        if order.is_stop:
            order.peak = self._reference(req.symbol)
            return self._check_stop(order, None)
        if req.order_type is OrderType.MARKET:
            return self._take(order, limit=None, expire_rest=True)
        if req.post_only:
            self._join_queue(order)
            return []
        if req.time_in_force is TimeInForce.FOK:
            book = self.book(req.symbol)
            available = sum(
                (book.available(req.side, p, q) for p, q in book.levels(req.side) if self._within(req, p)), ZERO
            )
            if available < req.quantity:
                order.status = OrderStatus.EXPIRED
                return [self._update(order)]
        immediate = req.time_in_force in (TimeInForce.IOC, TimeInForce.FOK)
        updates = self._take(order, limit=req.price, expire_rest=immediate)
        if order.status.open:
            self._join_queue(order)
        return updates

    # -- queue position -----------------------------------------------------------------------------
    def _join_queue(self, order: _SimOrder) -> None:
        """A limit starts resting: everything visible at its price on its side is ahead of it."""
        if self.config.queue_position:
            order.queue_ahead = self._visible_at(order.request)

    def _visible_at(self, req: OrderRequest) -> Decimal:
        return visible_at(self.book(req.symbol), req)

    def _queue_fill(self, order: _SimOrder, trade_price: Decimal | None, trade_qty: Decimal) -> list[OrderUpdate]:
        """Trades at the order's price eat the queue ahead first; the book shrinking there shortens it too."""
        req = order.request
        if order.queue_ahead is None:
            return []
        if trade_price is None:
            order.queue_ahead = min(order.queue_ahead, self._visible_at(req))
            return []
        # A trade at our price takes our side only when its aggressor is on the other side.
        hits_us = self.book(req.symbol).last_buyer_is_maker == (req.side is Side.BUY)
        if trade_price != req.price or not hits_us or trade_qty <= 0:
            return []
        order.queue_ahead -= trade_qty
        if order.queue_ahead >= 0:
            return []
        quantity = min(order.remaining, -order.queue_ahead)
        order.queue_ahead = ZERO
        return [*self._expire_siblings(order), self._fill(order, req.price, quantity, maker=True)]

    def _take(self, order: _SimOrder, limit: Decimal | None, expire_rest: bool) -> list[OrderUpdate]:
        req = order.request
        book = self.book(req.symbol)
        updates: list[OrderUpdate] = []
        slip = self.config.slippage_bps / BPS
        for price, quantity in book.levels(req.side):
            if order.remaining <= 0:
                break
            if limit is not None and not self._within(req, price):
                break
            take = min(order.remaining, book.available(req.side, price, quantity))
            if take <= 0:
                continue
            key = (req.side.name, price)
            book.consumed[key] = book.consumed.get(key, ZERO) + take
            fill_price = price * (1 + slip) if req.side is Side.BUY else price * (1 - slip)
            updates += self._expire_siblings(order)
            updates.append(self._fill(order, fill_price, take, maker=False))
        if order.remaining > 0 and expire_rest:
            order.status = OrderStatus.EXPIRED
            updates.append(self._update(order))
        return updates

    def _match_resting(self, symbol: str, trade_price: Decimal | None, trade_qty: Decimal) -> list[OrderUpdate]:
        updates: list[OrderUpdate] = []
        book = self.book(symbol)
        resting = [o for o in self._open.get(symbol, {}).values() if o.arrived]
        for order in sorted(resting, key=lambda o: int(o.venue_order_id)):
            if not order.status.open:  # an OCO sibling filled earlier in this pass
                continue
            if order.is_stop:
                updates += self._check_stop(order, trade_price)
                continue
            req = order.request
            if trade_price is not None:
                through = trade_price < req.price if req.side is Side.BUY else trade_price > req.price
                if through and trade_qty > 0:
                    updates += self._expire_siblings(order)
                    updates.append(self._fill(order, req.price, min(order.remaining, trade_qty), maker=True))
                else:
                    updates += self._queue_fill(order, trade_price, trade_qty)
                continue
            self._queue_fill(order, None, ZERO)
            crossing = [(p, q) for p, q in book.levels(req.side) if self._within(req, p)]
            for price, quantity in crossing:
                if order.remaining <= 0:
                    break
                take = min(order.remaining, book.available(req.side, price, quantity))
                if take <= 0:
                    continue
                key = (req.side.name, price)
                book.consumed[key] = book.consumed.get(key, ZERO) + take
                updates += self._expire_siblings(order)
                updates.append(self._fill(order, req.price, take, maker=True))
        return updates

    def _check_stop(self, order: _SimOrder, trade_price: Decimal | None) -> list[OrderUpdate]:
        req = order.request
        book = self.book(req.symbol)
        # Like Binance, stops watch the last trade price; a feed without trades falls back to the touch.
        if trade_price is not None:
            ref = trade_price
        elif book.last_trade:
            ref = book.last_trade
        elif req.side is Side.SELL:
            ref = book.bids[0][0] if book.bids else ZERO
        else:
            ref = book.asks[0][0] if book.asks else ZERO
        if not ref:
            return []
        if req.trailing_stop_bps:
            # Trail the best price seen since arrival; the stop never moves against the position.
            best = max if req.side is Side.SELL else min
            _trail(order, best(order.peak or ref, ref))
        hit = ref <= order.stop if req.side is Side.SELL else ref >= order.stop
        if not hit:
            return []
        order.triggered = True
        return self._expire_siblings(order) + self._take(order, limit=None, expire_rest=True)

    def _expire_siblings(self, order: _SimOrder) -> list[OrderUpdate]:
        if not order.group_id:
            return []
        updates = []
        for cid in self._groups.get(order.group_id, []):
            sibling = self._orders[cid]
            if sibling is not order and sibling.status.open:
                sibling.status = OrderStatus.EXPIRED
                updates.append(self._update(sibling))
        return updates

    def _fill(self, order: _SimOrder, price: Decimal, quantity: Decimal, maker: bool) -> OrderUpdate:
        req = order.request
        order.filled += quantity
        order.filled_quote += price * quantity
        order.status = OrderStatus.FILLED if order.remaining == 0 else OrderStatus.PARTIALLY_FILLED
        rate = self.config.maker_fee_bps if maker else self.config.taker_fee_bps
        fee, fee_asset, fee_quote, base_fee = commission(self.config, req, price, quantity, rate)
        fill = Fill(
            client_order_id=req.client_order_id,
            trade_id=f"P{next(self._trade_ids)}",
            price=price,
            quantity=quantity,
            fee=fee,
            fee_asset=fee_asset,
            fee_quote=fee_quote,
            base_fee=base_fee,
            is_maker=maker,
            time_ns=self.now_ns,
        )
        return self._update(order, fill)

    # -- helpers ----------------------------------------------------------------------------------
    @staticmethod
    def _within(req: OrderRequest, price: Decimal) -> bool:
        return price <= req.price if req.side is Side.BUY else price >= req.price

    def _would_take(self, req: OrderRequest) -> bool:
        levels = self.book(req.symbol).levels(req.side)
        return bool(levels) and self._within(req, levels[0][0])

    def _reference(self, symbol: str) -> Decimal:
        book = self.book(symbol)
        return book.last_trade or book.mid

    def _update(self, order: _SimOrder, fill: Fill | None = None, reject: tuple[str, str] = ("", "")) -> OrderUpdate:
        # Every status change reports through here: the natural place to drop closed orders from the index.
        if not order.status.open:
            self._open.get(order.request.symbol, {}).pop(order.request.client_order_id, None)
        return OrderUpdate(
            client_order_id=order.request.client_order_id,
            symbol=order.request.symbol,
            status=order.status,
            venue_order_id=order.venue_order_id,
            fill=fill,
            time_ns=self.now_ns,
            executed_quantity=order.filled,
            executed_quote=order.filled_quote,
            reject_code=reject[0],
            reject_message=reject[1],
        )

    def _snapshot(self, order: _SimOrder) -> OrderSnapshot:
        req = order.request
        return OrderSnapshot(
            client_order_id=req.client_order_id,
            symbol=req.symbol,
            side=req.side,
            order_type=req.order_type,
            status=order.status,
            quantity=req.quantity,
            executed_quantity=order.filled,
            executed_quote=order.filled_quote,
            price=req.price,
            stop_price=order.stop or req.stop_price,
            time_in_force=req.time_in_force,
            venue_order_id=order.venue_order_id,
            group_id=order.group_id,
            time_ns=self.now_ns,
        )

    def orders(self) -> Iterable[OrderSnapshot]:
        return [self._snapshot(o) for o in self._orders.values()]


def _trail(order: _SimOrder, peak: Decimal) -> None:
    """Move a trailing stop's ratchet to `peak` and its stop with it (never against the position)."""
    req = order.request
    trail = req.trailing_stop_bps / BPS
    order.peak = peak
    if req.side is Side.SELL:
        order.stop = max(req.stop_price or ZERO, peak * (1 - trail))
    else:
        candidate = peak * (1 + trail)
        order.stop = min(req.stop_price, candidate) if req.stop_price else candidate

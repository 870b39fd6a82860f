"""How orders trade on the paper venue (paper.py's FillSimulator): arrival, queue position, taking the book,
resting fills, stops and OCO siblings, and the updates and snapshots they report. Pure, like paper.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from quantumedge.execution.domain.orders import (
    ZERO,
    Fill,
    OrderRequest,
    OrderSnapshot,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
)
from quantumedge.execution.domain.paper_model import (
    BPS,
    PaperBook,
    PaperConfig,
    commission,
    visible_at,
)


@dataclass
class SimOrder:
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


class PaperMatching:
    """The matching half of FillSimulator, which owns the state below and the books."""

    config: PaperConfig
    now_ns: int
    book: Callable[[str], PaperBook]
    _orders: dict[str, SimOrder]
    _open: dict[str, dict[str, SimOrder]]
    _groups: dict[str, list[str]]
    _trade_ids: Iterator[int]

    # -- matching ---------------------------------------------------------------------------------
    def _on_arrival(self, order: SimOrder) -> list[OrderUpdate]:
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
    def _join_queue(self, order: SimOrder) -> None:
        """A limit starts resting: everything visible at its price on its side is ahead of it."""
        if self.config.queue_position:
            order.queue_ahead = self._visible_at(order.request)

    def _visible_at(self, req: OrderRequest) -> Decimal:
        return visible_at(self.book(req.symbol), req)

    def _queue_fill(self, order: SimOrder, trade_price: Decimal | None, trade_qty: Decimal) -> list[OrderUpdate]:
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

    def _take(self, order: SimOrder, limit: Decimal | None, expire_rest: bool) -> list[OrderUpdate]:
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

    def _check_stop(self, order: SimOrder, trade_price: Decimal | None) -> list[OrderUpdate]:
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
            trail(order, best(order.peak or ref, ref))
        hit = ref <= order.stop if req.side is Side.SELL else ref >= order.stop
        if not hit:
            return []
        order.triggered = True
        return self._expire_siblings(order) + self._take(order, limit=None, expire_rest=True)

    def _expire_siblings(self, order: SimOrder) -> list[OrderUpdate]:
        if not order.group_id:
            return []
        updates = []
        for cid in self._groups.get(order.group_id, []):
            sibling = self._orders[cid]
            if sibling is not order and sibling.status.open:
                sibling.status = OrderStatus.EXPIRED
                updates.append(self._update(sibling))
        return updates

    def _fill(self, order: SimOrder, price: Decimal, quantity: Decimal, maker: bool) -> OrderUpdate:
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

    def _update(self, order: SimOrder, fill: Fill | None = None, reject: tuple[str, str] = ("", "")) -> OrderUpdate:
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

    def _snapshot(self, order: SimOrder) -> OrderSnapshot:
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


def trail(order: SimOrder, peak: Decimal) -> None:
    """Move a trailing stop's ratchet to `peak` and its stop with it (never against the position)."""
    req = order.request
    trail = req.trailing_stop_bps / BPS
    order.peak = peak
    if req.side is Side.SELL:
        order.stop = max(req.stop_price or ZERO, peak * (1 - trail))
    else:
        candidate = peak * (1 + trail)
        order.stop = min(req.stop_price, candidate) if req.stop_price else candidate

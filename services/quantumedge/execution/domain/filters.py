"""Exchange filters (Binance exchangeInfo): rounding to tick and step, and the checks run before sending.

A violation carries the code and message Binance itself would answer with (-1013 "Filter failure: X"),
so a local refusal reads exactly like the exchange's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from quantumedge.execution.domain.orders import ZERO, OrderType, Side, dec

FILTER_FAILURE_CODE = "-1013"
KNOWN_QUOTES = ("USDT", "FDUSD", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY")


@dataclass(frozen=True)
class FilterViolation:
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code} {self.message}"


def split_symbol(symbol: str) -> tuple[str, str]:
    """(base, quote) from a symbol like BTCUSDT, for venues that do not say (paper)."""
    for quote in KNOWN_QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-4], symbol[-4:]


def _quantize(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    if not step:
        return value
    return (value / step).to_integral_value(rounding=rounding) * step


@dataclass(frozen=True)
class PercentPriceBySide:
    """PERCENT_PRICE_BY_SIDE: a limit price within a band around the average price, per side."""

    bid_up: Decimal
    bid_down: Decimal
    ask_up: Decimal
    ask_down: Decimal
    avg_price_mins: int = 0

    def band(self, side: Side, average: Decimal) -> tuple[Decimal, Decimal]:
        """(lowest, highest) price the venue takes for `side` around the average price."""
        if side is Side.BUY:
            return average * self.bid_down, average * self.bid_up
        return average * self.ask_down, average * self.ask_up


@dataclass(frozen=True)
class TrailingDeltaRange:
    """TRAILING_DELTA: trailingDelta (BIPS) bounds. "Above" orders trigger above the market (STOP_LOSS
    BUY, TAKE_PROFIT SELL), "below" orders below it (STOP_LOSS SELL, TAKE_PROFIT BUY)."""

    min_above: int
    max_above: int
    min_below: int
    max_below: int

    def bounds(self, stop_side: Side) -> tuple[int, int]:
        """(min, max) for a stop-loss on `stop_side`."""
        if stop_side is Side.BUY:
            return self.min_above, self.max_above
        return self.min_below, self.max_below


def _filter_fields(f: Mapping[str, Any]) -> dict[str, Any]:
    """SymbolFilters fields from one exchangeInfo filter (empty for the ones not checked here)."""
    kind = f.get("filterType")
    if kind == "PRICE_FILTER":
        return {"tick_size": dec(f["tickSize"]), "min_price": dec(f["minPrice"]), "max_price": dec(f["maxPrice"])}
    if kind == "LOT_SIZE":
        return {"step_size": dec(f["stepSize"]), "min_qty": dec(f["minQty"]), "max_qty": dec(f["maxQty"])}
    if kind == "MARKET_LOT_SIZE":
        return {
            "market_step_size": dec(f["stepSize"]),
            "market_min_qty": dec(f["minQty"]),
            "market_max_qty": dec(f["maxQty"]),
        }
    if kind == "NOTIONAL":
        return {
            "min_notional": dec(f.get("minNotional", "0")),
            "max_notional": dec(f.get("maxNotional", "0")),
            "apply_min_to_market": bool(f.get("applyMinToMarket", True)),
            "apply_max_to_market": bool(f.get("applyMaxToMarket", False)),
            "notional_filter": "NOTIONAL",
        }
    if kind == "MIN_NOTIONAL":
        return {
            "min_notional": dec(f.get("minNotional", "0")),
            "apply_min_to_market": bool(f.get("applyToMarket", True)),
            "notional_filter": "MIN_NOTIONAL",
        }
    if kind == "PERCENT_PRICE_BY_SIDE":
        band = PercentPriceBySide(
            dec(f["bidMultiplierUp"]),
            dec(f["bidMultiplierDown"]),
            dec(f["askMultiplierUp"]),
            dec(f["askMultiplierDown"]),
            int(f.get("avgPriceMins", 0)),
        )
        return {"percent_price_by_side": band}
    if kind == "TRAILING_DELTA":
        keys = ("minTrailingAboveDelta", "maxTrailingAboveDelta", "minTrailingBelowDelta", "maxTrailingBelowDelta")
        return {"trailing_delta": TrailingDeltaRange(*(int(f[k]) for k in keys))}
    counts = {
        "MAX_NUM_ORDERS": ("max_num_orders", "maxNumOrders"),
        "MAX_NUM_ALGO_ORDERS": ("max_num_algo_orders", "maxNumAlgoOrders"),
        "MAX_NUM_ORDER_LISTS": ("max_num_order_lists", "maxNumOrderLists"),
    }
    if kind in counts:
        field_name, key = counts[kind]
        return {field_name: int(f.get(key, 0))}
    return {}


@dataclass(frozen=True)
class SymbolFilters:
    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal = ZERO
    min_price: Decimal = ZERO
    max_price: Decimal = ZERO
    step_size: Decimal = ZERO
    min_qty: Decimal = ZERO
    max_qty: Decimal = ZERO
    market_step_size: Decimal = ZERO
    market_min_qty: Decimal = ZERO
    market_max_qty: Decimal = ZERO
    min_notional: Decimal = ZERO
    max_notional: Decimal = ZERO
    apply_min_to_market: bool = True
    apply_max_to_market: bool = False
    # Legacy MIN_NOTIONAL filter (older symbols) instead of NOTIONAL: the message names the filter in use.
    notional_filter: str = "NOTIONAL"
    max_num_orders: int = 0
    max_num_algo_orders: int = 0
    max_num_order_lists: int = 0
    percent_price_by_side: PercentPriceBySide | None = None
    trailing_delta: TrailingDeltaRange | None = None
    order_types: frozenset[str] = frozenset()

    @classmethod
    def from_exchange_info(cls, info: Mapping[str, Any]) -> SymbolFilters:
        """From one entry of exchangeInfo's `symbols` array."""
        kw: dict[str, Any] = {}
        for f in info.get("filters", []):
            kw.update(_filter_fields(f))
        return cls(
            symbol=info["symbol"],
            base_asset=info.get("baseAsset") or split_symbol(info["symbol"])[0],
            quote_asset=info.get("quoteAsset") or split_symbol(info["symbol"])[1],
            order_types=frozenset(info.get("orderTypes", [])),
            **kw,
        )

    @classmethod
    def simple(
        cls,
        symbol: str,
        tick_size: str = "0.01",
        step_size: str = "0.00001",
        min_notional: str = "5",
        max_num_orders: int = 200,
    ) -> SymbolFilters:
        """Filters for venues without exchangeInfo (paper), shaped like Binance's BTCUSDT."""
        base, quote = split_symbol(symbol)
        return cls(
            symbol=symbol,
            base_asset=base,
            quote_asset=quote,
            tick_size=Decimal(tick_size),
            min_price=Decimal(tick_size),
            step_size=Decimal(step_size),
            min_qty=Decimal(step_size),
            min_notional=Decimal(min_notional),
            max_num_orders=max_num_orders,
        )

    # -- rounding ---------------------------------------------------------------------------------
    def round_price(self, price: Decimal, direction: str = "nearest") -> Decimal:
        """Price on the tick grid: 'nearest', 'down' or 'up' (e.g. a buy limit rounds down to stay passive)."""
        mode = {"nearest": ROUND_HALF_UP, "down": ROUND_FLOOR, "up": ROUND_CEILING}[direction]
        return _quantize(price, self.tick_size, mode).normalize() if price else price

    def round_quantity(self, quantity: Decimal, order_type: OrderType = OrderType.LIMIT) -> Decimal:
        """Quantity floored to the step (never more than asked)."""
        step = self.step_size
        if order_type is OrderType.MARKET and self.market_step_size:
            step = self.market_step_size
        return _quantize(quantity, step, ROUND_FLOOR).normalize() if quantity else quantity

    def dust(self, quantity: Decimal, price: Decimal = ZERO) -> Decimal:
        """The part of a holding (signed like it) no order can sell: what is below one lot step, or all of it
        when what a market order could sell is under the minimum quantity or (valued at `price`) notional."""
        size = abs(quantity)
        tradable = self.round_quantity(self.round_quantity(size, OrderType.MARKET), OrderType.LIMIT)
        min_qty = max(self.min_qty, self.market_min_qty)
        if tradable and min_qty and tradable < min_qty:
            tradable = ZERO
        below_notional = bool(price and self.min_notional and tradable * price < self.min_notional)
        if tradable and below_notional and self.apply_min_to_market:
            tradable = ZERO
        dust = size - tradable
        return dust if quantity >= 0 else -dust

    # -- checks -----------------------------------------------------------------------------------
    def check(
        self,
        order_type: OrderType,
        quantity: Decimal,
        price: Decimal = ZERO,
        reference_price: Decimal = ZERO,
        open_orders: int = 0,
        *,
        side: Side | None = None,
        average_price: Decimal = ZERO,
        stop_price: Decimal = ZERO,
        trailing_delta: Decimal = ZERO,
        open_algo_orders: int = 0,
    ) -> FilterViolation | None:
        """The first filter the order breaks, or None. `reference_price` values market orders' notional;
        `average_price` is the venue's average price (PERCENT_PRICE_BY_SIDE); a `stop_price` or
        `trailing_delta` makes it a stop-loss on `side` (an "algo" order)."""
        return (
            self._check_prices(price, stop_price)
            or self._check_quantity(order_type, quantity)
            or self._check_notional(order_type, quantity, price, reference_price)
            or self._check_band(side, price, average_price)
            or self._check_stop(side, stop_price, trailing_delta, open_algo_orders)
            or (self._fail("MAX_NUM_ORDERS") if self.max_num_orders and open_orders >= self.max_num_orders else None)
        )

    def check_list(self, open_orders: int, open_algo_orders: int, open_order_lists: int) -> FilterViolation | None:
        """Whether one more OCO (two orders, one of them a stop) fits the symbol's open-order counts."""
        if self.max_num_order_lists and open_order_lists >= self.max_num_order_lists:
            return self._fail("MAX_NUM_ORDER_LISTS")
        if (full := self.check_algo(open_algo_orders)) is not None:
            return full
        if self.max_num_orders and open_orders + 2 > self.max_num_orders:
            return self._fail("MAX_NUM_ORDERS")
        return None

    def check_algo(self, open_algo_orders: int) -> FilterViolation | None:
        """Whether one more stop ("algo") order fits MAX_NUM_ALGO_ORDERS."""
        if self.max_num_algo_orders and open_algo_orders >= self.max_num_algo_orders:
            return self._fail("MAX_NUM_ALGO_ORDERS")
        return None

    def _check_prices(self, *prices: Decimal) -> FilterViolation | None:
        # PRICE_FILTER rules apply to `price` and `stopPrice` alike (Binance "Filters").
        for value in prices:
            if not value:
                continue
            if (self.min_price and value < self.min_price) or (self.max_price and value > self.max_price):
                return self._fail("PRICE_FILTER")
            if self.tick_size and (value / self.tick_size) % 1 != 0:
                return self._fail("PRICE_FILTER")
        return None

    def _check_quantity(self, order_type: OrderType, quantity: Decimal) -> FilterViolation | None:
        if quantity <= 0:
            return self._fail("LOT_SIZE")
        if (self.min_qty and quantity < self.min_qty) or (self.max_qty and quantity > self.max_qty):
            return self._fail("LOT_SIZE")
        if self.step_size and (quantity / self.step_size) % 1 != 0:
            return self._fail("LOT_SIZE")
        if order_type is OrderType.MARKET:
            if self.market_min_qty and quantity < self.market_min_qty:
                return self._fail("MARKET_LOT_SIZE")
            if self.market_max_qty and quantity > self.market_max_qty:
                return self._fail("MARKET_LOT_SIZE")
        return None

    def _check_notional(
        self, order_type: OrderType, quantity: Decimal, price: Decimal, reference_price: Decimal
    ) -> FilterViolation | None:
        value_price = price if order_type is OrderType.LIMIT and price else reference_price
        if not value_price:
            return None
        notional = value_price * quantity
        is_market = order_type is OrderType.MARKET
        if self.min_notional and notional < self.min_notional and (self.apply_min_to_market or not is_market):
            return self._fail(self.notional_filter)
        if self.max_notional and notional > self.max_notional and (self.apply_max_to_market or not is_market):
            return self._fail(self.notional_filter)
        return None

    def _check_band(self, side: Side | None, price: Decimal, average: Decimal) -> FilterViolation | None:
        band = self.percent_price_by_side
        if band is None or side is None or not price or not average:
            return None
        low, high = band.band(side, average)
        return self._fail("PERCENT_PRICE_BY_SIDE") if not low <= price <= high else None

    def _check_stop(
        self, side: Side | None, stop_price: Decimal, trailing: Decimal, open_algo: int
    ) -> FilterViolation | None:
        if not (stop_price or trailing):
            return None
        if (full := self.check_algo(open_algo)) is not None:
            return full
        if trailing and self.trailing_delta is not None and side is not None:
            low, high = self.trailing_delta.bounds(side)
            if not low <= trailing <= high:
                return self._fail("TRAILING_DELTA")
        return None

    # -- fitting protection -------------------------------------------------------------------------
    def fit_take_profit(self, side: Side, price: Decimal, average: Decimal) -> Decimal:
        """A take-profit limit moved inside PERCENT_PRICE_BY_SIDE and PRICE_FILTER (closer to the market,
        never further): the venue refuses it outside them, and a refused OCO leaves the position naked."""
        band = self.percent_price_by_side
        if band is not None and average:
            low, high = band.band(side, average)
            if price > high:
                price = self.round_price(high, "down")
            elif price < low:
                price = self.round_price(low, "up")
        return self._clamp_price(price)

    def fit_stop_price(self, price: Decimal) -> Decimal:
        return self._clamp_price(self.round_price(price)) if price else price

    def fit_trailing_delta(self, stop_side: Side, trailing: Decimal) -> Decimal:
        """trailingDelta inside TRAILING_DELTA's bounds for a stop on `stop_side`."""
        if not trailing or self.trailing_delta is None:
            return trailing
        low, high = self.trailing_delta.bounds(stop_side)
        return Decimal(min(max(int(trailing), low), high))

    def _clamp_price(self, price: Decimal) -> Decimal:
        if self.min_price and price < self.min_price:
            return self.min_price
        if self.max_price and price > self.max_price:
            return self.round_price(self.max_price, "down")
        return price

    @staticmethod
    def _fail(name: str) -> FilterViolation:
        return FilterViolation(FILTER_FAILURE_CODE, f"Filter failure: {name}")

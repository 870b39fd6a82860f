"""Exchange filters (Binance exchangeInfo): rounding to tick and step, and the checks run before sending.

A violation carries the code and message Binance itself would answer with (-1013 "Filter failure: X"),
so a local refusal reads exactly like the exchange's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from quantumedge.execution.orders import ZERO, OrderType, dec

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
    order_types: frozenset[str] = frozenset()

    @classmethod
    def from_exchange_info(cls, info: Mapping[str, Any]) -> SymbolFilters:
        """From one entry of exchangeInfo's `symbols` array."""
        kw: dict[str, Any] = {}
        for f in info.get("filters", []):
            kind = f.get("filterType")
            if kind == "PRICE_FILTER":
                kw.update(tick_size=dec(f["tickSize"]), min_price=dec(f["minPrice"]), max_price=dec(f["maxPrice"]))
            elif kind == "LOT_SIZE":
                kw.update(step_size=dec(f["stepSize"]), min_qty=dec(f["minQty"]), max_qty=dec(f["maxQty"]))
            elif kind == "MARKET_LOT_SIZE":
                kw.update(
                    market_step_size=dec(f["stepSize"]),
                    market_min_qty=dec(f["minQty"]),
                    market_max_qty=dec(f["maxQty"]),
                )
            elif kind == "NOTIONAL":
                kw.update(
                    min_notional=dec(f.get("minNotional", "0")),
                    max_notional=dec(f.get("maxNotional", "0")),
                    apply_min_to_market=bool(f.get("applyMinToMarket", True)),
                    apply_max_to_market=bool(f.get("applyMaxToMarket", False)),
                    notional_filter="NOTIONAL",
                )
            elif kind == "MIN_NOTIONAL":
                kw.update(
                    min_notional=dec(f.get("minNotional", "0")),
                    apply_min_to_market=bool(f.get("applyToMarket", True)),
                    notional_filter="MIN_NOTIONAL",
                )
            elif kind == "MAX_NUM_ORDERS":
                kw["max_num_orders"] = int(f.get("maxNumOrders", 0))
            elif kind == "MAX_NUM_ALGO_ORDERS":
                kw["max_num_algo_orders"] = int(f.get("maxNumAlgoOrders", 0))
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
    ) -> FilterViolation | None:
        """The first filter the order breaks, or None. `reference_price` values market orders' notional."""
        if price:
            if self.min_price and price < self.min_price:
                return self._fail("PRICE_FILTER")
            if self.max_price and price > self.max_price:
                return self._fail("PRICE_FILTER")
            if self.tick_size and (price / self.tick_size) % 1 != 0:
                return self._fail("PRICE_FILTER")
        if quantity <= 0:
            return self._fail("LOT_SIZE")
        if self.min_qty and quantity < self.min_qty:
            return self._fail("LOT_SIZE")
        if self.max_qty and quantity > self.max_qty:
            return self._fail("LOT_SIZE")
        if self.step_size and (quantity / self.step_size) % 1 != 0:
            return self._fail("LOT_SIZE")
        if order_type is OrderType.MARKET:
            if self.market_min_qty and quantity < self.market_min_qty:
                return self._fail("MARKET_LOT_SIZE")
            if self.market_max_qty and quantity > self.market_max_qty:
                return self._fail("MARKET_LOT_SIZE")
        value_price = price if order_type is OrderType.LIMIT and price else reference_price
        if value_price:
            notional = value_price * quantity
            is_market = order_type is OrderType.MARKET
            if self.min_notional and notional < self.min_notional and (self.apply_min_to_market or not is_market):
                return self._fail(self.notional_filter)
            if self.max_notional and notional > self.max_notional and (self.apply_max_to_market or not is_market):
                return self._fail(self.notional_filter)
        if self.max_num_orders and open_orders >= self.max_num_orders:
            return self._fail("MAX_NUM_ORDERS")
        return None

    @staticmethod
    def _fail(name: str) -> FilterViolation:
        return FilterViolation(FILTER_FAILURE_CODE, f"Filter failure: {name}")

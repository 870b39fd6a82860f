"""Binance spot's trading rules as the local trading peer enforces them, written from Binance's docs:

- "Filters": PRICE_FILTER (on `price` and `stopPrice`), LOT_SIZE, NOTIONAL, PERCENT_PRICE_BY_SIDE (a limit
  price within a band around the weighted average price of the last `avgPriceMins` minutes, per side),
  TRAILING_DELTA (trailingDelta bounds; "below" for STOP_LOSS SELL, "above" for STOP_LOSS BUY),
  MAX_NUM_ORDERS, MAX_NUM_ALGO_ORDERS (STOP_LOSS counts as "algo"), MAX_NUM_ORDER_LISTS;
- "Unfilled Order Count": new orders per interval per account, reported in X-MBX-ORDER-COUNT-(n)(letter)
  on successful orders, and refused over the limit with HTTP 429, -1015 "Too many new orders; current
  limit is %s orders per %s." and Retry-After (cancels are not counted). The docs' decrement for orders
  that fill is not modelled: the peer counts every new order, which is the stricter reading.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

D = Decimal
EIGHT = D("0.00000001")


def fmt8(value: Decimal) -> str:
    """Binance prints decimals with 8 places."""
    return f"{value.quantize(EIGHT):f}"


class ApiError(Exception):
    def __init__(self, http_status: int, code: int, msg: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{code} {msg}")
        self.http_status, self.code, self.msg = http_status, code, msg
        self.headers = dict(headers or {})


def filter_failure(name: str) -> ApiError:
    return ApiError(400, -1013, f"Filter failure: {name}")


@dataclass
class SymbolSpec:
    symbol: str
    base: str
    quote: str
    tick: Decimal = Decimal("0.01")
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("1000000")
    step: Decimal = Decimal("0.00001")
    min_qty: Decimal = Decimal("0.00001")
    min_notional: Decimal = Decimal("5")
    max_num_orders: int = 200
    max_num_algo_orders: int = 5
    # 0: the symbol has no MAX_NUM_ORDER_LISTS filter.
    max_num_order_lists: int = 0
    # (bidMultiplierUp, bidMultiplierDown, askMultiplierUp, askMultiplierDown, avgPriceMins), or None.
    percent_price_by_side: tuple[str, str, str, str, int] | None = None
    # (minTrailingAboveDelta, maxTrailingAboveDelta, minTrailingBelowDelta, maxTrailingBelowDelta), or None.
    trailing_delta: tuple[int, int, int, int] | None = None

    def filters_json(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt8(self.min_price),
                "maxPrice": fmt8(self.max_price),
                "tickSize": fmt8(self.tick),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": fmt8(self.min_qty),
                "maxQty": "9000.00000000",
                "stepSize": fmt8(self.step),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": "0.00000000",
                "maxQty": "100.00000000",
                "stepSize": "0.00000000",
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": fmt8(self.min_notional),
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": self.max_num_orders},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": self.max_num_algo_orders},
        ]
        if self.max_num_order_lists:
            out.append({"filterType": "MAX_NUM_ORDER_LISTS", "maxNumOrderLists": self.max_num_order_lists})
        if self.percent_price_by_side:
            bid_up, bid_down, ask_up, ask_down, mins = self.percent_price_by_side
            out.append(
                {
                    "filterType": "PERCENT_PRICE_BY_SIDE",
                    "bidMultiplierUp": bid_up,
                    "bidMultiplierDown": bid_down,
                    "askMultiplierUp": ask_up,
                    "askMultiplierDown": ask_down,
                    "avgPriceMins": mins,
                }
            )
        if self.trailing_delta:
            keys = ("minTrailingAboveDelta", "maxTrailingAboveDelta", "minTrailingBelowDelta", "maxTrailingBelowDelta")
            out.append({"filterType": "TRAILING_DELTA", **dict(zip(keys, self.trailing_delta, strict=True))})
        return out

    # -- checks (raise the error Binance answers with) ---------------------------------------------
    def check_price(self, value: Decimal) -> None:
        """PRICE_FILTER, for `price` and `stopPrice` alike."""
        if not value:
            return
        if value < self.min_price or value > self.max_price or value % self.tick != 0:
            raise filter_failure("PRICE_FILTER")

    def check_band(self, side: str, price: Decimal, average: Decimal) -> None:
        if not self.percent_price_by_side or not price or not average:
            return
        bid_up, bid_down, ask_up, ask_down, _ = self.percent_price_by_side
        up, down = (D(bid_up), D(bid_down)) if side == "BUY" else (D(ask_up), D(ask_down))
        if not average * down <= price <= average * up:
            raise filter_failure("PERCENT_PRICE_BY_SIDE")

    def check_trailing(self, side: str, trailing: int) -> None:
        if not trailing or not self.trailing_delta:
            return
        min_above, max_above, min_below, max_below = self.trailing_delta
        low, high = (min_above, max_above) if side == "BUY" else (min_below, max_below)
        if not low <= trailing <= high:
            raise filter_failure("TRAILING_DELTA")

    @property
    def avg_price_mins(self) -> int:
        return self.percent_price_by_side[4] if self.percent_price_by_side else 5


class AveragePrices:
    """Quantity-weighted average trade price over the last N minutes (0 minutes: the last price)."""

    def __init__(self) -> None:
        self._trades: dict[str, deque[tuple[float, Decimal, Decimal]]] = {}
        self._lock = threading.Lock()

    def add(self, symbol: str, time_s: float, price: Decimal, qty: Decimal) -> None:
        with self._lock:
            self._trades.setdefault(symbol, deque(maxlen=100_000)).append((time_s, price, qty))

    def price(self, symbol: str, minutes: int, now_s: float, last: Decimal) -> Decimal:
        with self._lock:
            trades = [t for t in self._trades.get(symbol, ()) if minutes and t[0] >= now_s - minutes * 60]
        volume = sum((q for _, _, q in trades), D(0))
        if not volume:
            return last
        return sum((p * q for _, p, q in trades), D(0)) / volume


class OrderCounter:
    """New orders per account per fixed window ("10S", "1D"), as the ORDERS rate limits count them."""

    UNIT = {"S": ("SECOND", 1), "M": ("MINUTE", 60), "H": ("HOUR", 3600), "D": ("DAY", 86400)}

    def __init__(self, limits: Mapping[str, int]) -> None:
        self.limits = dict(limits)
        self._placed: deque[float] = deque(maxlen=1_000_000)
        self._lock = threading.Lock()

    @classmethod
    def seconds(cls, key: str) -> int:
        return int(key[:-1]) * cls.UNIT[key[-1]][1]

    def counts(self, now_s: float) -> dict[str, int]:
        """Orders placed in each limit's current window."""
        with self._lock:
            out = {}
            for key in self.limits:
                start = now_s - now_s % self.seconds(key)
                out[key] = sum(1 for t in self._placed if t >= start)
            return out

    def admit(self, orders: int, now_s: float) -> None:
        """Count `orders` new orders, or raise -1015 when one of the windows is full."""
        counts = self.counts(now_s)
        for key, limit in self.limits.items():
            if counts[key] + orders > limit:
                seconds = self.seconds(key)
                retry = max(1, int(seconds - now_s % seconds + 0.999))
                interval = f"{key[:-1]} {self.UNIT[key[-1]][0]}"
                raise ApiError(
                    429,
                    -1015,
                    f"Too many new orders; current limit is {limit} orders per {interval}.",
                    {"Retry-After": str(retry)},
                )
        with self._lock:
            self._placed.extend([now_s] * orders)

    def rate_limits_json(self) -> list[dict[str, Any]]:
        return [
            {
                "rateLimitType": "ORDERS",
                "interval": self.UNIT[key[-1]][0],
                "intervalNum": int(key[:-1]),
                "limit": limit,
            }
            for key, limit in self.limits.items()
        ]

"""Request-weight and order-rate limiters fed by the venue's headers. Pure: clocks are injected.

Binance keeps two separate budgets (REST API "LIMITS"): the request weight per IP
(X-MBX-USED-WEIGHT-1M, HTTP 429/418 with -1003) and the account's new-order count per interval
(X-MBX-ORDER-COUNT-10S / -1D, HTTP 429 with -1015). Only new orders spend the second one, so running
out of it must never hold back a cancel or a query.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

_INTERVAL_S = {"S": 1, "M": 60, "H": 3600, "D": 86400}
_ORDER_COUNT = "x-mbx-order-count-"


def interval_key(interval: str, interval_num: int) -> str:
    """exchangeInfo's ("SECOND", 10) as the header suffix Binance uses for it: "10S"."""
    return f"{int(interval_num)}{interval[:1].upper()}"


def interval_seconds(key: str) -> int:
    """ "10S" -> 10, "1D" -> 86400 (0 when the suffix is not one Binance documents)."""
    number, letter = key[:-1], key[-1:].upper()
    if not number.isdigit() or letter not in _INTERVAL_S:
        return 0
    return int(number) * _INTERVAL_S[letter]


class RateLimiter:
    """Respects Binance's limits: X-MBX-USED-WEIGHT-1M against the minute's limit, 429/418 Retry-After,
    and the new-order counts against the ORDERS limits.

    `before(weight)` and `before_order()` answer how long to wait before sending; they never sleep.
    """

    def __init__(
        self,
        weight_limit_1m: int = 6000,
        headroom: float = 0.9,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.weight_limit_1m = weight_limit_1m
        self.headroom = headroom
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._blocked_until = 0.0
        self.banned = False
        self.used_weight_1m = 0
        self._used_minute = -1
        self.last_retry_after_s = 0.0
        # ORDERS limits by header suffix ("10S" -> 100), from exchangeInfo's rateLimits.
        self.order_limits: dict[str, int] = {}
        # suffix -> (orders placed in the window, the window's index) as the venue last reported.
        self.order_counts: dict[str, tuple[int, int]] = {}
        self._orders_blocked_until = 0.0

    def before(self, weight: int = 1) -> float:
        with self._lock:
            now = self._clock()
            if now < self._blocked_until:
                return self._blocked_until - now
            self.banned = False
            minute = int(self._wall() // 60)
            if minute != self._used_minute:
                return 0.0  # a new minute: the venue's counter has reset
            if self.used_weight_1m + weight > self.weight_limit_1m * self.headroom:
                return 60.0 - (self._wall() % 60)
            return 0.0

    def before_order(self, orders: int = 1) -> float:
        """Seconds to wait before `orders` new orders fit in every ORDERS window (0 = send now)."""
        with self._lock:
            now = self._clock()
            wait = max(0.0, self._orders_blocked_until - now)
            wall = self._wall()
            for key, limit in self.order_limits.items():
                seconds = interval_seconds(key)
                count, window = self.order_counts.get(key, (0, -1))
                if not seconds or window != int(wall // seconds):
                    continue  # a new window: the venue's count has reset
                if count + orders > limit * self.headroom:
                    wait = max(wait, seconds - (wall % seconds))
            return wait

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read the used weight and order counts the venue reports (header names are case-insensitive)."""
        for name, value in headers.items():
            lower = name.lower()
            if lower == "x-mbx-used-weight-1m":
                with self._lock:
                    try:
                        self.used_weight_1m = int(value)
                    except ValueError:
                        continue
                    self._used_minute = int(self._wall() // 60)
            elif lower.startswith(_ORDER_COUNT):
                key = lower[len(_ORDER_COUNT) :].upper()
                seconds = interval_seconds(key)
                if not seconds:
                    continue
                try:
                    count = int(value)
                except ValueError:
                    continue
                with self._lock:
                    self.order_counts[key] = (count, int(self._wall() // seconds))

    def block(self, retry_after_s: float, banned: bool) -> None:
        """The IP is over its request weight (-1003): nothing may be sent until Retry-After."""
        with self._lock:
            self.last_retry_after_s = retry_after_s
            self._blocked_until = max(self._blocked_until, self._clock() + retry_after_s)
            self.banned = self.banned or banned

    def block_orders(self, retry_after_s: float) -> None:
        """The account placed too many orders (-1015): new orders wait; cancels and queries do not."""
        with self._lock:
            self.last_retry_after_s = retry_after_s
            self._orders_blocked_until = max(self._orders_blocked_until, self._clock() + retry_after_s)

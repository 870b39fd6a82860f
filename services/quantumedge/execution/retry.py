"""A request-weight limiter fed by the venue's headers. Pure: clocks are injected."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping


class RateLimiter:
    """Respects Binance's limits: X-MBX-USED-WEIGHT-1M against the minute's limit, 429/418 Retry-After.

    `before(weight)` answers how long to wait before sending; it never sleeps itself.
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

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read the used weight the venue reports (header names are case-insensitive in HTTP)."""
        for name, value in headers.items():
            if name.lower() == "x-mbx-used-weight-1m":
                with self._lock:
                    try:
                        self.used_weight_1m = int(value)
                    except ValueError:
                        return
                    self._used_minute = int(self._wall() // 60)

    def block(self, retry_after_s: float, banned: bool) -> None:
        with self._lock:
            self.last_retry_after_s = retry_after_s
            self._blocked_until = max(self._blocked_until, self._clock() + retry_after_s)
            self.banned = self.banned or banned

"""A cache of exchangeInfo answers (pure: the clock is injected).

GET /api/v3/exchangeInfo costs 20 request weight. Filters change rarely, so a symbol's filters are
asked again only after `ttl_s`, and a stale entry keeps serving when the refresh fails. The venue's
"Invalid symbol." (-1121) answer is remembered too, for `unknown_ttl_s`: a stream of decisions for a
symbol the venue does not list then costs one call per expiry, not one per decision.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from quantumedge.execution.domain.filters import SymbolFilters


class ExchangeInfoCache:
    def __init__(
        self, ttl_s: float = 3600.0, unknown_ttl_s: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.unknown_ttl_s = unknown_ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._known: dict[str, tuple[SymbolFilters, float]] = {}
        self._unknown: dict[str, float] = {}

    def cached(self, symbol: str) -> SymbolFilters | None:
        """The symbol's filters, fresh or stale (None when never learned)."""
        with self._lock:
            entry = self._known.get(symbol)
            return entry[0] if entry else None

    def unknown(self, symbol: str) -> bool:
        """True while the venue's "unknown symbol" answer for it has not expired."""
        with self._lock:
            return self._unknown.get(symbol, 0.0) > self._clock()

    def needs_fetch(self, symbol: str) -> bool:
        with self._lock:
            now = self._clock()
            if self._unknown.get(symbol, 0.0) > now:
                return False
            entry = self._known.get(symbol)
            return entry is None or entry[1] <= now

    def store(self, filters: Iterable[SymbolFilters]) -> None:
        with self._lock:
            expires = self._clock() + self.ttl_s
            for f in filters:
                self._known[f.symbol] = (f, expires)
                self._unknown.pop(f.symbol, None)

    def mark_unknown(self, symbols: Iterable[str]) -> None:
        with self._lock:
            expires = self._clock() + self.unknown_ttl_s
            for symbol in symbols:
                # A symbol the venue stopped listing loses its filters: no order is sent for it any more.
                self._known.pop(symbol, None)
                self._unknown[symbol] = expires

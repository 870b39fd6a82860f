"""Signals held until risk's book has caught up with them, in market time (pure: no clock, no I/O).

Risk consumes the market topics and the signals topic side by side; under load its book can lag the
signals it decides on, and an entry priced from that book carries a take-profit and stop that are already
on the wrong side of the market execution sees. An entry whose signal's market time (Signal.event_time_ns,
the feature row's exchange time) is ahead of the symbol's book (SymbolMarket.market_ns) by more than the
allowance is held here until the book reaches it, then decided on the fresh book. Only the newest signal
per (symbol, horizon) is kept and the whole store is bounded; one that waits past its bounds is refused
with BOOK_BEHIND_SIGNAL. Exits are never held (an exit on a stale book still beats no exit): the engine
only asks here once the policy has classified the signal as an entry.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from quantumedge.v1 import signal_pb2

BOOK_BEHIND_SIGNAL = "book_behind_signal"
SIGNAL_SUPERSEDED = "signal_superseded"
# The other way round: the book has moved on past the market the signal was predicted on.
SIGNAL_BEHIND_BOOK = "signal_behind_book"


@dataclass(frozen=True)
class Held:
    signal: signal_pb2.Signal
    held_ns: int  # the caller's now_ns when it was first held (the wall bound runs from here)


@dataclass(frozen=True)
class Dropped:
    """A held signal that will not be decided on a fresh book: refused with `code` and `detail`."""

    signal: signal_pb2.Signal
    code: str
    detail: str


class BookSync:
    """Held entry signals per (symbol, horizon), newest only, at most `max_held` in all."""

    def __init__(self, allowance_ns: int, max_lag_ns: int, max_wait_ns: int, max_held: int) -> None:
        self.allowance_ns = allowance_ns
        self.max_lag_ns = max_lag_ns
        self.max_wait_ns = max_wait_ns
        self.max_held = max_held
        self._held: OrderedDict[tuple[str, int], Held] = OrderedDict()
        self.released = 0
        self.refused = 0

    def __len__(self) -> int:
        return len(self._held)

    def lag_ns(self, signal: signal_pb2.Signal, book_market_ns: int) -> int:
        """How far the signal's market time is ahead of the book's (<= 0: the book has caught up)."""
        if self.allowance_ns < 0 or signal.event_time_ns <= 0:
            return 0  # disabled, or a signal without a market time: nothing to compare (decided as before)
        return signal.event_time_ns - book_market_ns

    def behind(self, signal: signal_pb2.Signal, book_market_ns: int) -> bool:
        """The book is too old to price an entry on this signal."""
        return self.allowance_ns >= 0 and self.lag_ns(signal, book_market_ns) > self.allowance_ns

    def signal_behind(self, signal: signal_pb2.Signal, book_market_ns: int, bound_ns: int) -> str:
        """A reason when the book is more than bound_ns (market time) past the signal's market; else ""."""
        ahead = -self.lag_ns(signal, book_market_ns)
        if bound_ns <= 0 or signal.event_time_ns <= 0 or ahead <= bound_ns:
            return ""
        return (
            f"{SIGNAL_BEHIND_BOOK}: {signal.symbol} book {ahead / 1e6:.0f} ms past the signal > {bound_ns / 1e6:.0f} ms"
        )

    def hold(self, signal: signal_pb2.Signal, horizon: int, book_market_ns: int, now_ns: int) -> list[Dropped]:
        """Hold `signal` (an entry on `horizon`, the policy's choice); returns what that refused: the signal
        itself when the book is too far behind to wait on, an older one it replaced, the oldest past the bound."""
        lag = self.lag_ns(signal, book_market_ns)
        if self.max_lag_ns and lag > self.max_lag_ns:
            return [self._refuse(signal, f"book {lag / 1e6:.0f} ms behind the signal > {self.max_lag_ns / 1e6:.0f} ms")]
        key = (signal.symbol, horizon)
        out: list[Dropped] = []
        previous = self._held.pop(key, None)
        held_ns = now_ns
        if previous is not None and previous.signal.signal_id == signal.signal_id:
            held_ns = previous.held_ns  # a redelivery: same signal, its wait keeps running
        elif previous is not None:
            self.refused += 1
            out.append(Dropped(previous.signal, SIGNAL_SUPERSEDED, f"superseded by {signal.signal_id}"))
        self._held[key] = Held(signal, held_ns)
        while len(self._held) > self.max_held:
            _, oldest = self._held.popitem(last=False)
            out.append(self._refuse(oldest.signal, f"more than {self.max_held} signals held"))
        return out

    def ready(self, symbol: str, book_market_ns: int) -> list[signal_pb2.Signal]:
        """Held signals of `symbol` the book has now caught up with (taken out, oldest first)."""
        keys = [k for k, h in self._held.items() if k[0] == symbol and not self.behind(h.signal, book_market_ns)]
        self.released += len(keys)
        return [self._held.pop(k).signal for k in keys]

    def expired(self, now_ns: int) -> list[Dropped]:
        """Held signals that waited longer than max_wait_ns of the caller's clock (a stalled feed)."""
        keys = [k for k, h in self._held.items() if now_ns - h.held_ns > self.max_wait_ns]
        return [
            self._refuse(held.signal, f"book did not catch up within {self.max_wait_ns / 1e6:.0f} ms")
            for held in (self._held.pop(k) for k in keys)
        ]

    def _refuse(self, signal: signal_pb2.Signal, detail: str) -> Dropped:
        self.refused += 1
        return Dropped(signal, BOOK_BEHIND_SIGNAL, f"{signal.symbol} {detail}")

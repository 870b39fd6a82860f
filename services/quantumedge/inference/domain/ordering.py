"""Restore each symbol's canonical event order across the three market topics.

Trades, top of book and depth arrive on three topics; a consumer gets them grouped by partition,
not in exchange-time order (badly so while it catches up a backlog: one topic's records can come
thousands at a time before the others'). The feature definition needs them in canonical order
(exchange time, then kind rank), so the service passes every event through this buffer first.

Release rules, per symbol:
  * Watermark: an event is released once every stream (trade, depth, top of book) has delivered an
    event at or after its time. This alone restores the exact order, whatever the interleaving.
  * Quiet streams: an event held longer than `max_hold_ns` of wall-clock time is released without
    waiting for the quiet stream, but only when the symbol is live (its newest exchange time is
    within `live_window_ns` of the wall clock) or when nothing at all has arrived for `idle_ns`
    (longer than a consumer's pause between fetches, so a backlog is not mistaken for the end).
    A replay or a backlog runs far from the wall clock and keeps records coming: the missing
    stream's records are then on their way (a consumer may read one topic's backlog long before
    the others'), so waiting for them keeps the exact order.
  * Row clock: `release_before` lets the row clock (rowclock.py) take what is older than a row it
    must decide now, whatever a quiet stream still owes.
  * Memory: at most `max_buffered` events are held; beyond that the oldest are forced out.
  * Late arrivals behind what was already released: a trade is still folded in (into the next
    row), a depth update newer than the last one applied is applied, an older top of book or depth
    is stale and dropped. A trade id already seen at a time already seen is a redelivery: dropped.
  * A stream whose time jumps back by more than `reset_after_ns` (a source restarted) releases a
    gap marker first, so the features start again.

Pure logic: the caller passes the wall-clock time.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field

from quantumedge.inference.domain.features import KIND_RANK
from quantumedge.v1 import market_pb2

STREAMS = ("trade", "depth", "top_of_book")


@dataclass
class _Symbol:
    heap: list = field(default_factory=list)  # (time, rank, n, event)
    arrivals: deque = field(default_factory=deque)  # (arrival_ns, time) in arrival order
    latest: dict[str, int] = field(default_factory=dict)  # stream -> latest exchange time seen
    released_time: int = -1
    released_kind_time: dict[str, int] = field(default_factory=dict)
    last_trade_id: int = 0
    last_trade_time: int = -1


@dataclass
class OrderingStats:
    released: int = 0
    forced: int = 0  # released by the hold timeout or the size bound instead of the watermark
    late_released: int = 0  # arrived behind the watermark but still usable (trades, newer depth)
    late_dropped: int = 0
    duplicates: int = 0
    resets: int = 0


class ReorderBuffer:
    def __init__(
        self,
        streams: tuple[str, ...] = STREAMS,
        max_hold_ns: int = 200_000_000,
        max_buffered: int = 50_000,
        reset_after_ns: int = 60_000_000_000,
        idle_ns: int = 1_000_000_000,
        live_window_ns: int = 5_000_000_000,
    ) -> None:
        self.streams = tuple(streams)
        self.max_hold_ns = max_hold_ns
        self.max_buffered = max_buffered
        self.reset_after_ns = reset_after_ns
        self.idle_ns = idle_ns
        self.live_window_ns = live_window_ns
        self.stats = OrderingStats()
        self._symbols: dict[str, _Symbol] = {}
        self._n = 0
        self._last_arrival_ns = 0

    def buffered(self) -> int:
        return sum(len(s.heap) for s in self._symbols.values())

    def _may_force(self, sym: _Symbol, now_ns: int, quiet: bool = True) -> bool:
        """True when held events wait for a quiet stream rather than for records still on their way.

        `quiet` says the consumer has nothing in hand: without it, a pause since the last arrival is the
        consumer stalling on a backlog, not the market going quiet."""
        if quiet and now_ns - self._last_arrival_ns >= self.idle_ns:
            return True
        return bool(sym.latest) and abs(now_ns - max(sym.latest.values())) <= self.live_window_ns

    def live(self, symbol: str, now_ns: int, event_time_ns: int | None = None) -> bool:
        """True unless the symbol's records are a replay or a backlog still coming (see _may_force). An
        arriving event stamped near `now_ns` is live data, however long its symbol was silent before it."""
        if event_time_ns is not None and abs(now_ns - event_time_ns) <= self.live_window_ns:
            return True
        sym = self._symbols.get(symbol)
        # Not `_may_force`: a pause between arrivals says the consumer stalled, not that a replay became
        # live; deciding on it would close rows the other streams still owe events to.
        return sym is None or (bool(sym.latest) and abs(now_ns - max(sym.latest.values())) <= self.live_window_ns)

    def push(self, event: market_pb2.MarketEvent, now_ns: int) -> list[market_pb2.MarketEvent]:
        """Add one event; return the events this releases, in canonical order."""
        self._last_arrival_ns = now_ns
        kind = event.WhichOneof("payload") or ""
        sym = self._symbols.setdefault(event.symbol, _Symbol())
        t = event.exchange_time_ns
        out: list[market_pb2.MarketEvent] = []
        if t < sym.latest.get(kind, t) - self.reset_after_ns:
            out.extend(self._drain(sym))
            gap = market_pb2.GapMarker(stream=kind, reason="time went backwards")
            out.append(market_pb2.MarketEvent(symbol=event.symbol, exchange_time_ns=t, source="inference", gap=gap))
            self._symbols[event.symbol] = sym = _Symbol()
            self.stats.resets += 1
        if kind == "trade" and event.trade.trade_id:
            # Redelivered trade: an id already seen, at a time already seen (a restarted replay moves time on).
            if event.trade.trade_id <= sym.last_trade_id and t <= sym.last_trade_time:
                self.stats.duplicates += 1
                return out
            sym.last_trade_id = event.trade.trade_id
            sym.last_trade_time = max(t, sym.last_trade_time)
        if kind in self.streams:
            sym.latest[kind] = max(t, sym.latest.get(kind, t))
        if t < sym.released_time and kind != "gap":
            if kind == "trade" or (kind == "depth" and t > sym.released_kind_time.get(kind, -1)):
                self.stats.late_released += 1
                out.append(self._mark(sym, event, t))
            else:
                self.stats.late_dropped += 1
            return out
        if kind in ("depth", "top_of_book") and t <= sym.released_kind_time.get(kind, -1):
            self.stats.duplicates += 1
            return out
        self._n += 1
        heapq.heappush(sym.heap, (t, KIND_RANK.get(kind, 9), self._n, event))
        sym.arrivals.append((now_ns, t))
        out.extend(self._release(sym, now_ns))
        return out

    def flush_due(self, now_ns: int, quiet: bool = True) -> list[market_pb2.MarketEvent]:
        """Release what waited too long for a quiet stream; call it periodically (`quiet`: see _may_force)."""
        out: list[market_pb2.MarketEvent] = []
        for sym in self._symbols.values():
            if sym.heap:
                out.extend(self._release(sym, now_ns, quiet))
        return out

    def release_before(self, symbol: str, time_ns: int) -> list[market_pb2.MarketEvent]:
        """Release every held event of `symbol` older than `time_ns` (the row clock moved past it)."""
        sym = self._symbols.get(symbol)
        out: list[market_pb2.MarketEvent] = []
        if sym is None:
            return out
        limit = self._watermark(sym)
        while sym.heap and sym.heap[0][0] < time_ns:
            t, _, _, ev = heapq.heappop(sym.heap)
            if t > limit:
                self.stats.forced += 1
            out.append(self._mark(sym, ev, t))
        if not sym.heap:
            sym.arrivals.clear()
        return out

    def drain(self) -> list[market_pb2.MarketEvent]:
        out: list[market_pb2.MarketEvent] = []
        for sym in self._symbols.values():
            out.extend(self._drain(sym))
        return out

    def _watermark(self, sym: _Symbol) -> int:
        if len(sym.latest) < len(self.streams):
            return -1
        return min(sym.latest.values())

    def _release(self, sym: _Symbol, now_ns: int, quiet: bool = True) -> list[market_pb2.MarketEvent]:
        limit = self._watermark(sym)
        forced = -1
        if self._may_force(sym, now_ns, quiet):
            while sym.arrivals and sym.arrivals[0][0] <= now_ns - self.max_hold_ns:
                forced = max(forced, sym.arrivals.popleft()[1])
        while len(sym.arrivals) > self.max_buffered:
            forced = max(forced, sym.arrivals.popleft()[1])
        out = []
        heap = sym.heap
        while heap and (heap[0][0] <= limit or heap[0][0] <= forced):
            t, _, _, ev = heapq.heappop(heap)
            if t > limit:
                self.stats.forced += 1
            out.append(self._mark(sym, ev, t))
        if not heap:
            sym.arrivals.clear()
        return out

    def _drain(self, sym: _Symbol) -> list[market_pb2.MarketEvent]:
        out = []
        while sym.heap:
            t, _, _, ev = heapq.heappop(sym.heap)
            out.append(self._mark(sym, ev, t))
        sym.arrivals.clear()
        return out

    def _mark(self, sym: _Symbol, ev: market_pb2.MarketEvent, t: int) -> market_pb2.MarketEvent:
        self.stats.released += 1
        sym.released_time = max(sym.released_time, t)
        kind = ev.WhichOneof("payload") or ""
        sym.released_kind_time[kind] = max(t, sym.released_kind_time.get(kind, t))
        return ev

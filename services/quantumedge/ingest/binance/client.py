"""Binance spot market data over the combined-stream websocket, normalised into MarketEvents.

One connection carries `<sym>@trade` (or aggTrade), `<sym>@bookTicker` and `<sym>@depth@100ms`
for every configured symbol. Each symbol's depth feeds a DepthSync (the documented snapshot +
diff procedure); snapshots are fetched over REST off the event loop while diffs keep buffering.

Connection discipline: websockets' keepalive pings (a silent peer is dropped after
ping_interval + ping_timeout), reconnect with exponential backoff and jitter, a proactive
reconnect before Binance's 24-hour cut-off, and a GapMarker per symbol after every reconnect and
every depth resync so consumers know continuity broke. Bad frames are counted and logged, never
emitted, never fatal.

The asyncio loop runs in the thread that calls run(); emit() is called from that thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from quantumedge.ingest.binance.book import Outcome
from quantumedge.ingest.binance.feed import ALL_STREAMS, KINDS, BinanceFeed, ClientCounters, log_limited
from quantumedge.ingest.binance.rest import SnapshotError, fetch_depth_snapshot
from quantumedge.ingest.settings import IngestSettings
from quantumedge.ingest.source import Emit
from quantumedge.ingest.stats import StreamTable
from quantumedge.shared.backoff import Backoff
from quantumedge.shared.logs import get_logger
from quantumedge.v1 import ingest_pb2, market_pb2

log = get_logger(__name__)

CONNECTION_STREAM = "connection"
_STOP_POLL_S = 0.05
__all__ = ["ALL_STREAMS", "KINDS", "BinanceSource", "ClientCounters", "combined_stream_url"]


def combined_stream_url(base_url: str, streams: list[str]) -> str:
    """`<base>/stream?streams=a/b/c`; a base already ending in /stream or /ws is accepted too."""
    base = base_url.rstrip("/")
    for suffix in ("/stream", "/ws"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return f"{base}/stream?streams={'/'.join(streams)}"


class BinanceSource:
    """A MarketSource reading Binance spot (live or testnet, or any server speaking its format)."""

    def __init__(
        self,
        settings: IngestSettings,
        symbols: list[str],
        *,
        depth_speed_ms: int = 100,
        rng: random.Random | None = None,
    ) -> None:
        if not symbols:
            raise ValueError("BinanceSource needs at least one symbol")
        self.settings = settings
        self.symbols = [s.upper() for s in symbols]
        self.name = settings.source_name()
        self.ws_base = settings.ws_base_url()
        self.rest_base = settings.rest_base_url()
        self._rng = rng or random.Random()
        self.feed = BinanceFeed(
            self.symbols,
            source_name=self.name,
            emit=self._emit_event,
            want_snapshot=self._ensure_snapshot,
            trade_stream=settings.trade_stream,
            depth_speed_ms=depth_speed_ms,
            depth_levels=settings.depth_levels,
            max_buffered_diffs=settings.max_buffered_diffs,
        )
        self.url = combined_stream_url(self.ws_base, list(self.feed.routes))
        # One set of counters: the feed's frame counters plus this client's connection counters.
        self.counters: ClientCounters = self.feed.counters
        self.streams: StreamTable = self.feed.streams
        self._conn_stats = self.streams.get("", CONNECTION_STREAM)
        self._fetching: dict[str, asyncio.Task] = {}
        self._generation = 0
        self._connected = False
        self._healthy = False
        self._end_reason = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._emit: Emit = lambda _event: None

    def _emit_event(self, event: market_pb2.MarketEvent) -> None:
        self._emit(event)

    # -- MarketSource ------------------------------------------------------------------------------
    def run(self, emit: Emit, stop: threading.Event) -> None:
        self._emit = emit
        asyncio.run(self._main(stop))

    def stream_status(self) -> list[ingest_pb2.StreamStatus]:
        conn = self._conn_stats
        conn.connected = self._connected
        conn.reconnects = self.counters.reconnects
        conn.malformed = self.counters.malformed_frames
        return self.feed.stream_status(self._connected)

    # -- diagnostics (tests, GetStatus) -----------------------------------------------------------
    def book_view(self, symbol: str, timeout_s: float = 5.0) -> tuple[int, dict[float, float], dict[float, float]]:
        """(last update id, bids, asks) of the local book, or (0, {}, {}) while it is not synced.

        Read on the event loop's thread, so it never sees a half-applied diff.
        """
        loop = self._loop
        if loop is None or not loop.is_running():
            return self.feed.book_view(symbol)

        async def on_loop() -> tuple[int, dict[float, float], dict[float, float]]:
            return self.feed.book_view(symbol)

        try:
            return asyncio.run_coroutine_threadsafe(on_loop(), loop).result(timeout_s)
        except (FutureTimeout, RuntimeError):
            return self.feed.book_view(symbol)

    # -- connection loop ---------------------------------------------------------------------------
    async def _main(self, stop: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        backoff = Backoff(self.settings.reconnect_initial_s, self.settings.reconnect_max_s, self._rng)
        reason = ""
        try:
            while not stop.is_set():
                reason, healthy = await self._connection(stop, reason)
                if stop.is_set():
                    break
                if healthy:
                    backoff.reset()
                delay = 0.0 if reason == "max connection age" else backoff.next_delay()
                log.warning(
                    "binance stream disconnected; reconnecting",
                    extra={"reason": reason, "delay_s": round(delay, 3), "url": self.url},
                )
                await self._sleep(delay, stop)
        finally:
            self._connected = False
            for task in self._fetching.values():
                task.cancel()
            self._loop = None

    async def _connection(self, stop: threading.Event, previous_reason: str) -> tuple[str, bool]:
        """One connection's life: returns (why it ended, whether it delivered valid data)."""
        s = self.settings
        self._healthy = False
        self._end_reason = ""
        try:
            async with connect(
                self.url,
                open_timeout=s.open_timeout_s,
                # 0 disables keepalive (websockets wants None for that).
                ping_interval=s.ping_interval_s or None,
                ping_timeout=s.ping_timeout_s or None,
                close_timeout=s.close_timeout_s,
                max_queue=1024,
                compression=None,
            ) as ws:
                self._on_connected(previous_reason)
                watcher = asyncio.create_task(self._watch(ws, stop))
                try:
                    async for frame in ws:
                        self._on_frame(frame)
                finally:
                    watcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watcher
        except ConnectionClosed as exc:
            self._end_reason = self._end_reason or f"connection closed: {exc}"
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            self.counters.connect_failures += 1
            self._end_reason = f"connect failed: {type(exc).__name__}: {exc}"
        finally:
            self._on_disconnected()
        return self._end_reason or "connection closed by server", self._healthy

    async def _watch(self, ws: ClientConnection, stop: threading.Event) -> None:
        """Close the connection on stop, or once it is old enough to be cut by the venue."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.max_connection_age_s
        while not stop.is_set() and loop.time() < deadline:
            await asyncio.sleep(min(_STOP_POLL_S, max(0.0, deadline - loop.time())))
        if stop.is_set():
            self._end_reason = "stopped"
        else:
            self._end_reason = "max connection age"
            self.counters.proactive_reconnects += 1
        await ws.close()

    @staticmethod
    async def _sleep(delay_s: float, stop: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay_s
        while not stop.is_set() and loop.time() < deadline:
            await asyncio.sleep(min(_STOP_POLL_S, deadline - loop.time()))

    def _on_connected(self, previous_reason: str) -> None:
        self._connected = True
        self.counters.connections += 1
        first = self.counters.connections == 1
        if not first:
            self.counters.reconnects += 1
        log.info("binance stream connected", extra={"url": self.url, "reconnect": not first})
        for sym in self.symbols:
            for kind in KINDS:
                self.streams.get(sym, kind).reconnects = self.counters.reconnects
        self.feed.on_connected(not first, previous_reason, time.time_ns())

    def _on_disconnected(self) -> None:
        self._connected = False
        self._generation += 1
        for task in self._fetching.values():
            task.cancel()
        self._fetching.clear()
        self.feed.on_disconnected()

    def _on_frame(self, frame: str | bytes) -> None:
        if self.feed.on_frame(frame, time.time_ns()):
            self._healthy = True

    # -- snapshots ---------------------------------------------------------------------------------
    def _ensure_snapshot(self, symbol: str) -> None:
        task = self._fetching.get(symbol)
        if task is None or task.done():
            self._fetching[symbol] = asyncio.get_running_loop().create_task(
                self._snapshot_loop(symbol, self._generation)
            )

    async def _snapshot_loop(self, symbol: str, generation: int) -> None:
        s = self.settings
        backoff = Backoff(s.reconnect_initial_s, s.reconnect_max_s, self._rng)
        stale_in_a_row = 0
        while generation == self._generation and self.feed.waiting_for_snapshot(symbol):
            try:
                snapshot = await asyncio.to_thread(
                    fetch_depth_snapshot, self.rest_base, symbol, s.snapshot_limit, s.snapshot_timeout_s
                )
            except SnapshotError as exc:
                self.counters.snapshot_errors += 1
                delay = exc.retry_after_s if exc.retry_after_s is not None else backoff.next_delay()
                if exc.permanent:
                    delay = max(delay, s.reconnect_max_s)
                log_limited(
                    "depth snapshot failed", self.counters.snapshot_errors, symbol=symbol, error=str(exc), delay_s=delay
                )
                await asyncio.sleep(delay)
                continue
            if generation != self._generation:
                return  # the connection this snapshot was for is gone
            outcome = self.feed.on_snapshot(symbol, snapshot, time.time_ns())
            if outcome is Outcome.STALE_SNAPSHOT:
                # The docs say fetch again; back off only if the venue keeps answering with old books.
                stale_in_a_row += 1
                await asyncio.sleep(0 if stale_in_a_row == 1 else backoff.next_delay())
            elif outcome is not Outcome.GAP:
                return

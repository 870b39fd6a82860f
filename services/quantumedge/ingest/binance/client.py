"""Binance spot market data over the combined-stream websocket, normalised into MarketEvents.

One connection carries `<sym>@trade` (or aggTrade), `<sym>@bookTicker` and `<sym>@depth@100ms`
for every configured symbol. Each symbol's depth feeds a DepthSync (the documented snapshot +
diff procedure); snapshots are fetched over REST off the event loop while diffs keep buffering.

Connection discipline: websockets' keepalive pings (a silent peer is dropped after
ping_interval + ping_timeout), reconnect with exponential backoff and jitter, and a GapMarker per
symbol after every reconnect and every depth resync so consumers know continuity broke. Binance's
`serverShutdown` event and its 24-hour cut are handed over make-before-break: a new connection is
opened and read alongside the old until its depth diffs reach back to the books, then the old one is
closed; what both delivered is passed on once, and no gap is marked because there is none. A data
watchdog replaces a connection that stopped delivering (that one is a gap). Bad frames are counted and
logged, never emitted, never fatal.

The asyncio loop runs in the thread that calls run(); emit() is called from that thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

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


@dataclass
class _Link:
    """One websocket connection and the task reading it into a queue (None in the queue: it ended)."""

    ws: ClientConnection
    opened: float
    frames: asyncio.Queue = field(default_factory=asyncio.Queue, repr=False)
    reader: asyncio.Task | None = field(default=None, repr=False)
    closed: str = ""
    last_data: float = 0.0
    # The venue sent serverShutdown on this connection.
    shutdown: bool = False

    @classmethod
    def start(cls, ws: ClientConnection, now: float) -> _Link:
        link = cls(ws, now)
        link.reader = asyncio.get_running_loop().create_task(link._read())
        return link

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                self.frames.put_nowait(frame)
        except ConnectionClosed as exc:
            self.closed = f"connection closed: {exc}"
        finally:
            self.closed = self.closed or "connection closed by server"
            self.frames.put_nowait(None)

    @property
    def done(self) -> bool:
        """It ended and every frame it delivered has been taken."""
        return bool(self.closed) and self.frames.empty()

    async def next(self, timeout_s: float) -> str | bytes | None:
        """The next frame, or None after timeout_s (or at its end)."""
        if not self.frames.empty():
            return self.frames.get_nowait()  # the usual case under load: no timer needed
        try:
            return await asyncio.wait_for(self.frames.get(), timeout_s)
        except TimeoutError:
            return None

    def drain(self) -> list[str | bytes]:
        """The frames waiting now (without the end marker)."""
        out = []
        while not self.frames.empty():
            frame = self.frames.get_nowait()
            if frame is not None:
                out.append(frame)
        return out


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
                delay = backoff.next_delay()
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
        """A run of connections from one (re)connect until the stream breaks: each replacement in between
        (serverShutdown, age, data watchdog) is opened before the connection it replaces is closed.
        Returns (why the run ended, whether it delivered valid data)."""
        self._healthy = False
        try:
            link = await self._open_link()
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            self.counters.connect_failures += 1
            return f"connect failed: {type(exc).__name__}: {exc}", False
        self._on_connected(previous_reason)
        try:
            return await self._follow(link, stop), self._healthy
        finally:
            self._on_disconnected()

    async def _follow(self, link: _Link, stop: threading.Event) -> str:
        loop = asyncio.get_running_loop()
        retry_at = 0.0
        try:
            while True:
                why = await self._pump(link, stop, retry_at)
                if why == "stopped" or link.done:
                    return why
                replacement = await self._replace(link, why, stop)
                if replacement is None:
                    # The new connection failed: the current one carries on, and it is tried again.
                    retry_at = loop.time() + self.settings.reconnect_max_s
                    continue
                link, retry_at = replacement, 0.0
        finally:
            await self._close_link(link)

    async def _pump(self, link: _Link, stop: threading.Event, retry_at: float) -> str:
        """Feed the link's frames until it ends, stop is set, or it should be replaced (returns why)."""
        loop = asyncio.get_running_loop()
        s = self.settings
        while not stop.is_set():
            if link.done:
                return link.closed
            now = loop.time()
            if now >= retry_at:
                if link.shutdown:
                    return "serverShutdown"
                if now - link.opened >= s.max_connection_age_s:
                    return "max connection age"
                if s.data_timeout_s and now - max(link.opened, link.last_data) >= s.data_timeout_s:
                    return f"no data for {s.data_timeout_s:g}s"
            frame = await link.next(_STOP_POLL_S)
            if frame is not None:
                self._on_frame(frame, link)
        return "stopped"

    async def _replace(self, old: _Link, reason: str, stop: threading.Event) -> _Link | None:
        """Make before break: open the new connection first, then retire the old one."""
        try:
            new = await self._open_link()
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            self.counters.connect_failures += 1
            log.warning(
                "binance replacement connection failed; keeping the current one",
                extra={"reason": reason, "error": f"{type(exc).__name__}: {exc}"},
            )
            return None
        self.counters.connections += 1
        if reason.startswith("no data"):
            # The old connection went quiet: what it did not deliver is lost, as after a reconnect.
            self.counters.data_timeouts += 1
            await self._close_link(old)
            self._on_disconnected()
            self._on_connected(f"data watchdog: {reason}", counted=True)
            return new
        if reason == "max connection age":
            self.counters.proactive_reconnects += 1
        await self._overlap(old, new, stop)
        self.counters.handovers += 1
        log.info("binance stream handed over to a new connection", extra={"reason": reason})
        return new

    async def _overlap(self, old: _Link, new: _Link, stop: threading.Event) -> None:
        """Read the old connection while the new one's frames wait, for at least the minimum overlap and
        until the new one's depth diffs reach back to the synced books (or the old one ends, or the handover
        times out); then close the old one and feed the waiting frames, where whatever the old one already
        delivered is dropped as overlap."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + max(self.settings.handover_timeout_s, self.settings.handover_min_overlap_s)
        waiting: list[str | bytes] = []
        first_ids: dict[str, int] = {}
        while not stop.is_set() and not old.done and loop.time() < deadline:
            self._collect(new, waiting, first_ids)
            # At least the minimum overlap, so what the old one had in flight is read too.
            if loop.time() - start >= self.settings.handover_min_overlap_s and self.feed.overlaps(first_ids):
                break
            frame = await old.next(_STOP_POLL_S)
            if frame is not None:
                self._on_frame(frame, old)
        await self._close_link(old)
        self._collect(new, waiting, first_ids)
        self.feed.overlap = True
        try:
            for frame in waiting:
                self._on_frame(frame, new)
        finally:
            self.feed.overlap = False

    def _collect(self, link: _Link, waiting: list[str | bytes], first_ids: dict[str, int]) -> None:
        for frame in link.drain():
            waiting.append(frame)
            first = self.feed.first_diff(frame)
            if first is not None:
                first_ids.setdefault(*first)

    async def _open_link(self) -> _Link:
        s = self.settings
        ws = await connect(
            self.url,
            open_timeout=s.open_timeout_s,
            # 0 disables keepalive (websockets wants None for that).
            ping_interval=s.ping_interval_s or None,
            ping_timeout=s.ping_timeout_s or None,
            close_timeout=s.close_timeout_s,
            max_queue=1024,
            compression=None,
        )
        return _Link.start(ws, asyncio.get_running_loop().time())

    @staticmethod
    async def _close_link(link: _Link) -> None:
        with contextlib.suppress(Exception):
            await link.ws.close()
        if link.reader is not None:
            link.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await link.reader

    @staticmethod
    async def _sleep(delay_s: float, stop: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay_s
        while not stop.is_set() and loop.time() < deadline:
            await asyncio.sleep(min(_STOP_POLL_S, deadline - loop.time()))

    def _on_connected(self, previous_reason: str, counted: bool = False) -> None:
        self._connected = True
        if not counted:
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

    def _on_frame(self, frame: str | bytes, link: _Link) -> None:
        if self.feed.on_frame(frame, time.time_ns()):
            self._healthy = True
            link.last_data = asyncio.get_running_loop().time()
        if self.feed.shutdown_announced:
            self.feed.shutdown_announced = False
            link.shutdown = True

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

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
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from quantumedge.ingest.binance.book import DepthDiff, DepthSync, Outcome, SyncState
from quantumedge.ingest.binance.messages import (
    BookTickerMsg,
    ControlFrame,
    MalformedFrameError,
    TradeMsg,
    VenueError,
    parse_book_ticker,
    parse_depth,
    parse_envelope,
    parse_trade,
    stream_names,
)
from quantumedge.ingest.binance.rest import SnapshotError, fetch_depth_snapshot
from quantumedge.ingest.settings import IngestSettings
from quantumedge.ingest.source import Emit
from quantumedge.ingest.stats import StreamTable
from quantumedge.shared.backoff import Backoff
from quantumedge.shared.logs import get_logger
from quantumedge.shared.market_files import KIND_DEPTH, KIND_GAP, KIND_TOP_OF_BOOK, KIND_TRADE
from quantumedge.v1 import common_pb2, ingest_pb2, market_pb2

log = get_logger(__name__)

KINDS = (KIND_TRADE, KIND_TOP_OF_BOOK, KIND_DEPTH)
CONNECTION_STREAM = "connection"
ALL_STREAMS = "all"
_STOP_POLL_S = 0.05
# Binance spot: "A single connection can listen to a maximum of 1024 streams."
MAX_STREAMS_PER_CONNECTION = 1024


@dataclass
class ClientCounters:
    """Connection-wide counters (per-stream ones live in the StreamTable)."""

    connections: int = 0
    connect_failures: int = 0
    reconnects: int = 0
    proactive_reconnects: int = 0
    frames: int = 0
    malformed_frames: int = 0
    unknown_streams: int = 0
    venue_errors: int = 0
    out_of_order: int = 0
    depth_resyncs: int = 0
    stale_snapshots: int = 0
    snapshots: int = 0
    snapshot_errors: int = 0
    gap_markers: int = 0


def combined_stream_url(base_url: str, streams: list[str]) -> str:
    """`<base>/stream?streams=a/b/c`; a base already ending in /stream or /ws is accepted too."""
    base = base_url.rstrip("/")
    for suffix in ("/stream", "/ws"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return f"{base}/stream?streams={'/'.join(streams)}"


def _ms_to_ns(ms: int) -> int:
    return ms * 1_000_000


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
        # stream name -> (symbol, kind)
        self._routes: dict[str, tuple[str, str]] = {}
        for sym in self.symbols:
            for stream, kind in stream_names(sym, settings.trade_stream, depth_speed_ms).items():
                self._routes[stream] = (sym, kind)
        if len(self._routes) > MAX_STREAMS_PER_CONNECTION:
            raise ValueError(
                f"{len(self.symbols)} symbols need {len(self._routes)} streams; one Binance connection carries at most "
                f"{MAX_STREAMS_PER_CONNECTION}"
            )
        self.url = combined_stream_url(self.ws_base, list(self._routes))
        self.counters = ClientCounters()
        self.streams = StreamTable()
        for sym in self.symbols:
            for kind in KINDS:
                self.streams.get(sym, kind)
        self._conn_stats = self.streams.get("", CONNECTION_STREAM)
        self._syncs = {sym: DepthSync(sym, settings.max_buffered_diffs) for sym in self.symbols}
        self._last_trade_id: dict[str, int] = {}
        self._last_ticker_id: dict[str, int] = {}
        self._trade_gap_armed: dict[str, bool] = {}
        self._seq: dict[tuple[str, str], int] = {}
        self._fetching: dict[str, asyncio.Task] = {}
        self._generation = 0
        self._connected = False
        self._healthy = False
        self._end_reason = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._emit: Emit = lambda _event: None

    # -- MarketSource ------------------------------------------------------------------------------
    def run(self, emit: Emit, stop: threading.Event) -> None:
        self._emit = emit
        asyncio.run(self._main(stop))

    def stream_status(self) -> list[ingest_pb2.StreamStatus]:
        for sym, sync in self._syncs.items():
            depth = self.streams.get(sym, KIND_DEPTH)
            depth.book_depth_levels = sync.book.depth_levels() if sync.synced else 0
            depth.connected = self._connected and sync.synced
            for kind in (KIND_TRADE, KIND_TOP_OF_BOOK):
                self.streams.get(sym, kind).connected = self._connected
        conn = self._conn_stats
        conn.connected = self._connected
        conn.reconnects = self.counters.reconnects
        conn.malformed = self.counters.malformed_frames
        return self.streams.to_proto()

    # -- diagnostics (tests, GetStatus) -----------------------------------------------------------
    def book_view(self, symbol: str, timeout_s: float = 5.0) -> tuple[int, dict[float, float], dict[float, float]]:
        """(last update id, bids, asks) of the local book, or (0, {}, {}) while it is not synced.

        Read on the event loop's thread, so it never sees a half-applied diff.
        """
        sync = self._syncs[symbol.upper()]

        def read() -> tuple[int, dict[float, float], dict[float, float]]:
            if not sync.synced:
                return 0, {}, {}
            return sync.book.last_update_id, sync.book.bids.as_dict(), sync.book.asks.as_dict()

        loop = self._loop
        if loop is None or not loop.is_running():
            return read()

        async def on_loop() -> tuple[int, dict[float, float], dict[float, float]]:
            return read()

        try:
            return asyncio.run_coroutine_threadsafe(on_loop(), loop).result(timeout_s)
        except (FutureTimeout, RuntimeError):
            return read()

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
            self._trade_gap_armed[sym] = False
            for kind in KINDS:
                self.streams.get(sym, kind).reconnects = self.counters.reconnects
            if not first:
                # Everything between the old and the new connection is lost: say so before new data.
                self._gap(sym, ALL_STREAMS, f"reconnect ({previous_reason})")

    def _on_disconnected(self) -> None:
        self._connected = False
        self._generation += 1
        for task in self._fetching.values():
            task.cancel()
        self._fetching.clear()
        for sync in self._syncs.values():
            sync.restart()

    # -- frames ------------------------------------------------------------------------------------
    def _on_frame(self, frame: str | bytes) -> None:
        received_ns = time.time_ns()
        self.counters.frames += 1
        try:
            stream, data = parse_envelope(frame)
        except ControlFrame:
            return
        except VenueError as exc:
            self.counters.venue_errors += 1
            self._log_limited("binance error payload", self.counters.venue_errors, error=str(exc))
            return
        except MalformedFrameError as exc:
            self.counters.malformed_frames += 1
            self._log_limited("malformed frame dropped", self.counters.malformed_frames, error=str(exc))
            return
        route = self._routes.get(stream)
        if route is None:
            self.counters.unknown_streams += 1
            self.counters.malformed_frames += 1
            self._log_limited("frame of an unknown stream dropped", self.counters.unknown_streams, stream=stream)
            return
        symbol, kind = route
        try:
            if kind == KIND_TRADE:
                trade = parse_trade(data, symbol)
            elif kind == KIND_TOP_OF_BOOK:
                ticker = parse_book_ticker(data, symbol)
            else:
                diff = parse_depth(data, symbol)
        except (MalformedFrameError, TypeError, KeyError, OverflowError) as exc:
            # TypeError/KeyError/OverflowError: shapes no check anticipated; still bad data, never fatal.
            stats = self.streams.get(symbol, kind)
            stats.malformed += 1
            self._log_limited("malformed payload dropped", stats.malformed, stream=stream, error=str(exc))
            return
        self._healthy = True
        # Only valid data gets here; errors below (the bus) are not the venue's fault and propagate.
        if kind == KIND_TRADE:
            self._on_trade(symbol, trade, received_ns)
        elif kind == KIND_TOP_OF_BOOK:
            self._on_book_ticker(symbol, ticker, received_ns)
        else:
            self._on_depth(symbol, diff, received_ns)

    def _on_trade(self, symbol: str, msg: TradeMsg, received_ns: int) -> None:
        last = self._last_trade_id.get(symbol)
        if last is not None and msg.trade_id <= last:
            self._out_of_order(symbol, KIND_TRADE, f"trade id {msg.trade_id} after {last}")
            return
        if last is not None and msg.trade_id > last + 1 and self._trade_gap_armed.get(symbol):
            self._gap(symbol, KIND_TRADE, f"trade ids {last + 1}..{msg.trade_id - 1} missing")
        self._last_trade_id[symbol] = msg.trade_id
        self._trade_gap_armed[symbol] = True
        event = self._event(symbol, KIND_TRADE, _ms_to_ns(msg.trade_time_ms), received_ns)
        event.trade.price = msg.price
        event.trade.quantity = msg.quantity
        event.trade.buyer_is_maker = msg.buyer_is_maker
        event.trade.trade_id = msg.trade_id
        self._publish(event)

    def _on_book_ticker(self, symbol: str, msg: BookTickerMsg, received_ns: int) -> None:
        last = self._last_ticker_id.get(symbol)
        if last is not None and msg.update_id < last:
            self._out_of_order(symbol, KIND_TOP_OF_BOOK, f"book ticker u={msg.update_id} after {last}")
            return
        self._last_ticker_id[symbol] = msg.update_id
        # Spot bookTicker carries no event time: the receive time is the best estimate.
        exchange_ns = _ms_to_ns(msg.event_time_ms) if msg.event_time_ms else received_ns
        event = self._event(symbol, KIND_TOP_OF_BOOK, exchange_ns, received_ns)
        tob = event.top_of_book
        tob.bid_price, tob.bid_quantity = msg.bid_price, msg.bid_quantity
        tob.ask_price, tob.ask_quantity = msg.ask_price, msg.ask_quantity
        self._publish(event)

    def _on_depth(self, symbol: str, diff: DepthDiff, received_ns: int) -> None:
        sync = self._syncs[symbol]
        was_synced = sync.state is SyncState.SYNCED
        outcome = sync.on_diff(diff)
        if outcome is Outcome.APPLIED:
            self._publish_depth(symbol, _ms_to_ns(diff.event_time_ms), received_ns)
        elif outcome is Outcome.IGNORED:
            if was_synced:
                self._out_of_order(symbol, KIND_DEPTH, f"diff u={diff.final_update_id} already applied")
        elif outcome is Outcome.GAP:
            self.counters.depth_resyncs += 1
            self._gap(symbol, KIND_DEPTH, f"depth diff U={diff.first_update_id} does not follow the book")
            self._ensure_snapshot(symbol)
        elif outcome is Outcome.OVERFLOW:
            self.counters.depth_resyncs += 1
            self._gap(symbol, KIND_DEPTH, "depth buffer overflow while waiting for a snapshot")
            self._ensure_snapshot(symbol)
        else:  # BUFFERED
            self._ensure_snapshot(symbol)

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
        sync = self._syncs[symbol]
        stale_in_a_row = 0
        while generation == self._generation and sync.state is SyncState.WAITING_FOR_SNAPSHOT:
            try:
                snapshot = await asyncio.to_thread(
                    fetch_depth_snapshot, self.rest_base, symbol, s.snapshot_limit, s.snapshot_timeout_s
                )
            except SnapshotError as exc:
                self.counters.snapshot_errors += 1
                delay = exc.retry_after_s if exc.retry_after_s is not None else backoff.next_delay()
                if exc.permanent:
                    delay = max(delay, s.reconnect_max_s)
                self._log_limited(
                    "depth snapshot failed", self.counters.snapshot_errors, symbol=symbol, error=str(exc), delay_s=delay
                )
                await asyncio.sleep(delay)
                continue
            if generation != self._generation:
                return  # the connection this snapshot was for is gone
            self.counters.snapshots += 1
            outcome = sync.on_snapshot(snapshot)
            if outcome is Outcome.APPLIED:
                self._publish_depth(symbol, 0, time.time_ns())
                log.info(
                    "order book synchronised",
                    extra={"symbol": symbol, "last_update_id": sync.book.last_update_id},
                )
                return
            if outcome is Outcome.STALE_SNAPSHOT:
                self.counters.stale_snapshots += 1
                self._log_limited(
                    "stale depth snapshot; fetching again",
                    self.counters.stale_snapshots,
                    symbol=symbol,
                    last_update_id=snapshot.last_update_id,
                )
                # The docs say fetch again; back off only if the venue keeps answering with old books.
                stale_in_a_row += 1
                await asyncio.sleep(0 if stale_in_a_row == 1 else backoff.next_delay())
            elif outcome is Outcome.GAP:
                self.counters.depth_resyncs += 1
            else:
                return

    # -- events ------------------------------------------------------------------------------------
    def _event(self, symbol: str, kind: str, exchange_ns: int, received_ns: int) -> market_pb2.MarketEvent:
        key = (symbol, kind)
        seq = self._seq.get(key, 0) + 1
        self._seq[key] = seq
        return market_pb2.MarketEvent(
            symbol=symbol,
            exchange_time_ns=exchange_ns or received_ns,
            receive_time_ns=received_ns,
            sequence=seq,
            source=self.name,
        )

    def _publish(self, event: market_pb2.MarketEvent) -> None:
        kind = event.WhichOneof("payload")
        if kind != KIND_GAP:
            self.streams.get(event.symbol, kind).count_event(event.exchange_time_ns)
        self._emit(event)

    def _publish_depth(self, symbol: str, exchange_ns: int, received_ns: int) -> None:
        book = self._syncs[symbol].book
        bids, asks = book.top(self.settings.depth_levels)
        event = self._event(symbol, KIND_DEPTH, exchange_ns, received_ns)
        depth = event.depth
        depth.bids.extend(common_pb2.PriceLevel(price=p, quantity=q) for p, q in bids)
        depth.asks.extend(common_pb2.PriceLevel(price=p, quantity=q) for p, q in asks)
        depth.last_update_id = book.last_update_id
        self._publish(event)

    def _gap(self, symbol: str, stream: str, reason: str) -> None:
        self.counters.gap_markers += 1
        for kind in KINDS if stream == ALL_STREAMS else (stream,):
            self.streams.get(symbol, kind).gaps += 1
        now = time.time_ns()
        event = self._event(symbol, KIND_GAP, now, now)
        event.gap.stream = stream
        event.gap.reason = reason
        log.warning("market data gap", extra={"symbol": symbol, "stream": stream, "reason": reason})
        self._publish(event)

    def _out_of_order(self, symbol: str, kind: str, detail: str) -> None:
        self.counters.out_of_order += 1
        stats = self.streams.get(symbol, kind)
        stats.out_of_order += 1
        self._log_limited("out-of-order data dropped", stats.out_of_order, symbol=symbol, stream=kind, detail=detail)

    @staticmethod
    def _log_limited(message: str, count: int, **fields: object) -> None:
        """Log the first few occurrences, then every 1000th: a flood of bad frames must not flood the logs."""
        if count <= 3 or count % 1000 == 0:
            log.warning(message, extra={"count": count, **fields})

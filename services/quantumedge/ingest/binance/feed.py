"""Binance combined-stream frames in, normalised MarketEvents out (pure: no I/O, time is passed in).

This is the one place a Binance frame becomes an event: envelope and payload parsing, routing by
stream name, trade / book-ticker order checks, the depth sync of every symbol (book.DepthSync) and
the gap markers. The live websocket client (client.py) feeds it frames as they arrive and fetches the
snapshots it asks for; the capture replay (ingest/capture.py) feeds it recorded frames and the
recorded snapshot with their recorded receive times. So a capture comes out exactly as live would
have produced it from the same frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from quantumedge.ingest.binance.book import DepthDiff, DepthSnapshot, DepthSync, Outcome, SyncState
from quantumedge.ingest.binance.messages import (
    BookTickerMsg,
    ControlFrame,
    MalformedFrameError,
    ServerShutdown,
    TradeMsg,
    VenueError,
    parse_book_ticker,
    parse_depth,
    parse_envelope,
    parse_trade,
    stream_names,
)
from quantumedge.ingest.source import Emit
from quantumedge.ingest.stats import StreamTable
from quantumedge.shared.logs import get_logger
from quantumedge.shared.market_kinds import KIND_DEPTH, KIND_GAP, KIND_TOP_OF_BOOK, KIND_TRADE
from quantumedge.v1 import common_pb2, ingest_pb2, market_pb2

log = get_logger(__name__)

KINDS = (KIND_TRADE, KIND_TOP_OF_BOOK, KIND_DEPTH)
ALL_STREAMS = "all"
# Binance spot: "A single connection can listen to a maximum of 1024 streams."
MAX_STREAMS_PER_CONNECTION = 1024


@dataclass
class ClientCounters:
    """Feed-wide counters (per-stream ones live in the StreamTable); the client adds its connection ones."""

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
    # Make-before-break replacements (serverShutdown, connection age), the venue's serverShutdown events,
    # data the two connections of a handover both delivered (passed on once), and quiet connections
    # replaced by the data watchdog.
    handovers: int = 0
    server_shutdowns: int = 0
    overlap_duplicates: int = 0
    data_timeouts: int = 0


def _ms_to_ns(ms: int) -> int:
    return ms * 1_000_000


def log_limited(message: str, count: int, **fields: object) -> None:
    """Log the first few occurrences, then every 1000th: a flood of bad frames must not flood the logs."""
    if count <= 3 or count % 1000 == 0:
        log.warning(message, extra={"count": count, **fields})


class BinanceFeed:
    """Frames and snapshots of Binance spot market streams -> MarketEvents, for a fixed set of symbols.

    `emit` receives every valid event; `want_snapshot(symbol)` is called whenever a symbol's depth sync
    needs a REST snapshot (the caller fetches it, or finds it in a capture, and hands it to on_snapshot).
    """

    def __init__(
        self,
        symbols: list[str],
        *,
        source_name: str,
        emit: Emit,
        want_snapshot: Callable[[str], None],
        trade_stream: str = "trade",
        depth_speed_ms: int = 100,
        depth_levels: int = 20,
        max_buffered_diffs: int = 10_000,
    ) -> None:
        if not symbols:
            raise ValueError("a Binance feed needs at least one symbol")
        self.symbols = [s.upper() for s in symbols]
        self.name = source_name
        self.depth_levels = depth_levels
        self._emit = emit
        self._want_snapshot = want_snapshot
        # stream name -> (symbol, kind)
        self.routes: dict[str, tuple[str, str]] = {}
        for sym in self.symbols:
            for stream, kind in stream_names(sym, trade_stream, depth_speed_ms).items():
                self.routes[stream] = (sym, kind)
        if len(self.routes) > MAX_STREAMS_PER_CONNECTION:
            raise ValueError(
                f"{len(self.symbols)} symbols need {len(self.routes)} streams; one Binance connection carries at most "
                f"{MAX_STREAMS_PER_CONNECTION}"
            )
        self.counters = ClientCounters()
        self.streams = StreamTable()
        for sym in self.symbols:
            for kind in KINDS:
                self.streams.get(sym, kind)
        self.syncs = {sym: DepthSync(sym, max_buffered_diffs) for sym in self.symbols}
        self._last_trade_id: dict[str, int] = {}
        self._last_ticker_id: dict[str, int] = {}
        self._trade_gap_armed: dict[str, bool] = {}
        self._seq: dict[tuple[str, str], int] = {}
        # Set while a handover replays the new connection's first frames: data the old connection already
        # delivered is a duplicate to drop quietly, not out-of-order data.
        self.overlap = False
        # Set when a serverShutdown frame arrives; the connection owner clears it.
        self.shutdown_announced = False

    # -- connection life (the caller says when continuity broke) -----------------------------------
    def on_connected(self, reconnect: bool, reason: str, now_ns: int) -> None:
        """A new connection: after a reconnect everything in between is lost, so say so before new data."""
        for sym in self.symbols:
            self._trade_gap_armed[sym] = False
            if reconnect:
                self.gap(sym, ALL_STREAMS, f"reconnect ({reason})", now_ns)

    def on_disconnected(self) -> None:
        for sync in self.syncs.values():
            sync.restart()

    # -- frames ------------------------------------------------------------------------------------
    def on_frame(self, frame: str | bytes, received_ns: int) -> bool:
        """Handle one frame received at `received_ns`; True when it carried valid market data."""
        self.counters.frames += 1
        try:
            stream, data = parse_envelope(frame)
        except ServerShutdown:
            self.counters.server_shutdowns += 1
            self.shutdown_announced = True
            log.warning("binance announced a server shutdown; handing over to a new connection")
            return False
        except ControlFrame:
            return False
        except VenueError as exc:
            self.counters.venue_errors += 1
            log_limited("binance error payload", self.counters.venue_errors, error=str(exc))
            return False
        except MalformedFrameError as exc:
            self.counters.malformed_frames += 1
            log_limited("malformed frame dropped", self.counters.malformed_frames, error=str(exc))
            return False
        route = self.routes.get(stream)
        if route is None:
            self.counters.unknown_streams += 1
            self.counters.malformed_frames += 1
            log_limited("frame of an unknown stream dropped", self.counters.unknown_streams, stream=stream)
            return False
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
            log_limited("malformed payload dropped", stats.malformed, stream=stream, error=str(exc))
            return False
        # Only valid data gets here; errors below (the bus) are not the venue's fault and propagate.
        if kind == KIND_TRADE:
            self._on_trade(symbol, trade, received_ns)
        elif kind == KIND_TOP_OF_BOOK:
            self._on_book_ticker(symbol, ticker, received_ns)
        else:
            self._on_depth(symbol, diff, received_ns)
        return True

    def _on_trade(self, symbol: str, msg: TradeMsg, received_ns: int) -> None:
        last = self._last_trade_id.get(symbol)
        if last is not None and msg.trade_id <= last:
            self._out_of_order(symbol, KIND_TRADE, f"trade id {msg.trade_id} after {last}")
            return
        if last is not None and msg.trade_id > last + 1 and self._trade_gap_armed.get(symbol):
            self.gap(symbol, KIND_TRADE, f"trade ids {last + 1}..{msg.trade_id - 1} missing", received_ns)
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
        if last is not None and (msg.update_id < last or (self.overlap and msg.update_id == last)):
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
        sync = self.syncs[symbol]
        was_synced = sync.state is SyncState.SYNCED
        outcome = sync.on_diff(diff)
        if outcome is Outcome.APPLIED:
            self._publish_depth(symbol, _ms_to_ns(diff.event_time_ms), received_ns)
        elif outcome is Outcome.IGNORED:
            if was_synced:
                self._out_of_order(symbol, KIND_DEPTH, f"diff u={diff.final_update_id} already applied")
        elif outcome is Outcome.GAP:
            self.counters.depth_resyncs += 1
            self.gap(symbol, KIND_DEPTH, f"depth diff U={diff.first_update_id} does not follow the book", received_ns)
            self._want_snapshot(symbol)
        elif outcome is Outcome.OVERFLOW:
            self.counters.depth_resyncs += 1
            self.gap(symbol, KIND_DEPTH, "depth buffer overflow while waiting for a snapshot", received_ns)
            self._want_snapshot(symbol)
        else:  # BUFFERED
            self._want_snapshot(symbol)

    # -- handovers ---------------------------------------------------------------------------------
    def first_diff(self, frame: str | bytes) -> tuple[str, int] | None:
        """(symbol, first update id U) when the frame is a depth diff of one of our streams."""
        try:
            stream, data = parse_envelope(frame)
            symbol, kind = self.routes[stream]
            if kind != KIND_DEPTH:
                return None
            return symbol, parse_depth(data, symbol).first_update_id
        except (ControlFrame, VenueError, MalformedFrameError, KeyError, TypeError, OverflowError):
            return None

    def overlaps(self, first_ids: dict[str, int]) -> bool:
        """True when a new connection's first depth diffs (symbol -> U) reach back to the synced books:
        switching to it then loses no diff, and what it repeats is dropped as overlap. A symbol the new
        connection has sent no diff for yet has nothing of it to lose."""
        for symbol, first in first_ids.items():
            sync = self.syncs.get(symbol)
            if sync is not None and sync.state is SyncState.SYNCED and first > sync.book.last_update_id + 1:
                return False
        return True

    # -- snapshots ---------------------------------------------------------------------------------
    def waiting_for_snapshot(self, symbol: str) -> bool:
        return self.syncs[symbol].state is SyncState.WAITING_FOR_SNAPSHOT

    def on_snapshot(self, symbol: str, snapshot: DepthSnapshot, received_ns: int) -> Outcome:
        """A REST depth snapshot of `symbol` arrived at `received_ns`; APPLIED publishes the synced book."""
        self.counters.snapshots += 1
        sync = self.syncs[symbol]
        outcome = sync.on_snapshot(snapshot)
        if outcome is Outcome.APPLIED:
            self._publish_depth(symbol, 0, received_ns)
            log.info("order book synchronised", extra={"symbol": symbol, "last_update_id": sync.book.last_update_id})
        elif outcome is Outcome.STALE_SNAPSHOT:
            self.counters.stale_snapshots += 1
            log_limited(
                "stale depth snapshot; fetching again",
                self.counters.stale_snapshots,
                symbol=symbol,
                last_update_id=snapshot.last_update_id,
            )
        elif outcome is Outcome.GAP:
            self.counters.depth_resyncs += 1
        return outcome

    # -- views -------------------------------------------------------------------------------------
    def book_view(self, symbol: str) -> tuple[int, dict[float, float], dict[float, float]]:
        """(last update id, bids, asks) of the local book, or (0, {}, {}) while it is not synced."""
        sync = self.syncs[symbol.upper()]
        if not sync.synced:
            return 0, {}, {}
        return sync.book.last_update_id, sync.book.bids.as_dict(), sync.book.asks.as_dict()

    def stream_status(self, connected: bool) -> list[ingest_pb2.StreamStatus]:
        for sym, sync in self.syncs.items():
            depth = self.streams.get(sym, KIND_DEPTH)
            depth.book_depth_levels = sync.book.depth_levels() if sync.synced else 0
            depth.connected = connected and sync.synced
            for kind in (KIND_TRADE, KIND_TOP_OF_BOOK):
                self.streams.get(sym, kind).connected = connected
        return self.streams.to_proto()

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
        book = self.syncs[symbol].book
        bids, asks = book.top(self.depth_levels)
        event = self._event(symbol, KIND_DEPTH, exchange_ns, received_ns)
        depth = event.depth
        depth.bids.extend(common_pb2.PriceLevel(price=p, quantity=q) for p, q in bids)
        depth.asks.extend(common_pb2.PriceLevel(price=p, quantity=q) for p, q in asks)
        depth.last_update_id = book.last_update_id
        self._publish(event)

    def gap(self, symbol: str, stream: str, reason: str, now_ns: int) -> None:
        self.counters.gap_markers += 1
        for kind in KINDS if stream == ALL_STREAMS else (stream,):
            self.streams.get(symbol, kind).gaps += 1
        event = self._event(symbol, KIND_GAP, now_ns, now_ns)
        event.gap.stream = stream
        event.gap.reason = reason
        log.warning("market data gap", extra={"symbol": symbol, "stream": stream, "reason": reason})
        self._publish(event)

    def _out_of_order(self, symbol: str, kind: str, detail: str) -> None:
        if self.overlap:
            self.counters.overlap_duplicates += 1
            return
        self.counters.out_of_order += 1
        stats = self.streams.get(symbol, kind)
        stats.out_of_order += 1
        log_limited("out-of-order data dropped", stats.out_of_order, symbol=symbol, stream=kind, detail=detail)

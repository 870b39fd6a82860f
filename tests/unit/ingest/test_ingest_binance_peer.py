"""The real Binance client against a local peer speaking Binance's formats, misbehaving on purpose.

After each misbehaviour the client's local book must equal the peer's authoritative book, and
the counters and gap markers must say what happened.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from quantumedge.ingest.binance import BinanceSource
from quantumedge.ingest.binance.rest import SnapshotError, fetch_depth_snapshot
from quantumedge.ingest.settings import IngestSettings
from quantumedge.v1 import market_pb2
from tests.peers.binance_market import BinanceMarketPeer, wait_until

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
LEVELS = 5


class Running:
    """A BinanceSource running in its own thread, collecting what it emits."""

    def __init__(self, peer: BinanceMarketPeer, **overrides: object) -> None:
        fields: dict[str, object] = {
            "binance_ws_url": peer.ws_url,
            "binance_rest_url": peer.rest_url,
            "depth_levels": LEVELS,
            # Keepalive long enough that a busy CI machine never trips it, except where a test asks.
            "ping_interval_s": 5.0,
            "ping_timeout_s": 5.0,
            "close_timeout_s": 0.5,
            "reconnect_initial_s": 0.01,
            "reconnect_max_s": 0.05,
            **overrides,
        }
        self.peer = peer
        self.source = BinanceSource(IngestSettings(**fields), SYMBOLS)
        self.events: list[market_pb2.MarketEvent] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        wait_until(lambda: peer.active_connections >= 1, what="the client to connect")

    def _run(self) -> None:
        try:
            self.source.run(self.events.append, self.stop)
        except BaseException as exc:  # surfaced by close()
            self.error = exc

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "run() did not return after stop"
        assert self.error is None, f"run() raised {self.error!r}"

    def of(self, kind: str, symbol: str | None = None) -> list[market_pb2.MarketEvent]:
        return [
            e for e in list(self.events) if e.WhichOneof("payload") == kind and (symbol is None or e.symbol == symbol)
        ]

    def wait_synced(self, symbol: str) -> None:
        """Wait until the client's book has caught up with the peer's, then compare whole books."""
        wait_until(
            lambda: self.source.book_view(symbol)[0] == self.peer.last_update_id(symbol),
            what=f"{symbol} book to reach update id {self.peer.last_update_id(symbol)}",
        )
        assert self.source.book_view(symbol) == self.peer.book_state(symbol)

    def sync_all(self, rounds: int = 3) -> None:
        self.peer.push_all(rounds)
        for sym in SYMBOLS:
            self.wait_synced(sym)


@pytest.fixture
def peer() -> Iterator[BinanceMarketPeer]:
    with BinanceMarketPeer(SYMBOLS, seed=42) as p:
        yield p


@pytest.fixture
def running(peer: BinanceMarketPeer) -> Iterator[Running]:
    r = Running(peer)
    yield r
    r.close()


def _levels(levels) -> list[tuple[float, float]]:
    return [(lv.price, lv.quantity) for lv in levels]


def test_subscribes_on_the_combined_stream_for_every_symbol(running: Running, peer: BinanceMarketPeer) -> None:
    path = peer.paths[0]
    assert path.startswith("/stream?streams=")
    streams = set(path.split("=", 1)[1].split("/"))
    assert streams == {f"{s.lower()}@{k}" for s in SYMBOLS for k in ("trade", "bookTicker", "depth@100ms")}


def test_book_follows_the_peer_and_events_are_normalised(running: Running, peer: BinanceMarketPeer) -> None:
    running.sync_all(rounds=10)
    for sym in SYMBOLS:
        depth = running.of("depth", sym)
        assert depth, "depth events are published"
        last = depth[-1]
        bids, asks = peer.top(sym, LEVELS)
        assert (_levels(last.depth.bids), _levels(last.depth.asks)) == (bids, asks)
        assert last.depth.last_update_id == peer.last_update_id(sym)
        for kind in ("trade", "top_of_book", "depth"):
            events = running.of(kind, sym)
            # Per (source, symbol, stream) sequence: 1, 2, 3, ... with no hole.
            assert [e.sequence for e in events] == list(range(1, len(events) + 1))
            assert all(e.source == "binance" and e.exchange_time_ns > 0 and e.receive_time_ns > 0 for e in events)
        trades = running.of("trade", sym)
        assert len(trades) == 10
        assert [t.trade.trade_id for t in trades] == sorted({t.trade.trade_id for t in trades})
        tob = running.of("top_of_book", sym)[-1].top_of_book
        assert tob.bid_price < tob.ask_price
    assert running.of("gap") == []
    status = {(s.symbol, s.stream): s for s in running.source.stream_status()}
    depth_status = status[("BTCUSDT", "depth")]
    assert depth_status.connected
    assert depth_status.book_depth_levels == min(len(peer.book_state("BTCUSDT")[1]), len(peer.book_state("BTCUSDT")[2]))
    assert status[("BTCUSDT", "trade")].events == 10


def test_dropped_connection_reconnects_resubscribes_and_resyncs(running: Running, peer: BinanceMarketPeer) -> None:
    running.sync_all()
    assert peer.drop_connections() == 1
    wait_until(lambda: running.source.counters.reconnects == 1 and peer.active_connections == 1, what="reconnect")
    # The market moved while nobody listened ...
    running.sync_all()
    # ... and the client knows its continuity broke, once per symbol.
    gaps = running.of("gap")
    assert sorted(g.symbol for g in gaps) == SYMBOLS
    assert all(g.gap.stream == "all" and g.gap.reason.startswith("reconnect") for g in gaps)
    assert peer.paths[0] == peer.paths[1], "resubscribed to the same streams"
    status = {(s.symbol, s.stream): s for s in running.source.stream_status()}
    assert status[("ETHUSDT", "depth")].reconnects == 1
    assert status[("ETHUSDT", "depth")].gaps == 1


def test_silent_connection_is_detected_by_keepalive(peer: BinanceMarketPeer) -> None:
    r = Running(peer, ping_interval_s=0.1, ping_timeout_s=0.3, close_timeout_s=0.2)
    try:
        r.sync_all()
        peer.go_silent()
        # No frames and no pongs: only the keepalive can notice.
        wait_until(lambda: r.source.counters.reconnects >= 1 and peer.active_connections == 1, what="reconnect")
        r.sync_all()
        assert {g.symbol for g in r.of("gap")} == set(SYMBOLS)
    finally:
        r.close()


def test_sequence_gap_triggers_resync_from_a_new_snapshot(running: Running, peer: BinanceMarketPeer) -> None:
    running.sync_all()
    requests_before = peer.snapshot_requests
    peer.skip_next_diff("BTCUSDT")
    peer.push_depth("BTCUSDT", 5)
    running.wait_synced("BTCUSDT")
    assert running.source.counters.depth_resyncs == 1
    assert peer.snapshot_requests == requests_before + 1
    gaps = running.of("gap")
    assert [(g.symbol, g.gap.stream) for g in gaps] == [("BTCUSDT", "depth")]
    # ETHUSDT was never disturbed.
    running.wait_synced("ETHUSDT")
    assert running.source.counters.reconnects == 0


def test_malformed_frames_are_counted_and_never_emitted(running: Running, peer: BinanceMarketPeer) -> None:
    running.sync_all()
    emitted_before = len(running.events)
    kinds = peer.send_malformed("BTCUSDT")
    counters = running.source.counters
    running.sync_all()  # the feed goes on; frames arrive in order, so the bad ones were handled first
    # 4 unattributable frames (not JSON, not an object, no envelope, unknown stream) + 1 error payload.
    assert counters.malformed_frames == 4
    assert counters.unknown_streams == 1
    assert counters.venue_errors == 1
    status = {(s.symbol, s.stream): s for s in running.source.stream_status()}
    assert status[("BTCUSDT", "trade")].malformed == 1
    assert status[("BTCUSDT", "depth")].malformed == 2
    assert status[("BTCUSDT", "top_of_book")].malformed == 1
    assert status[("", "connection")].malformed == 4
    assert len(kinds) == 9
    assert counters.reconnects == 0
    new = running.events[emitted_before:]
    assert all(e.symbol in SYMBOLS for e in new)
    assert not any(e.HasField("trade") and e.trade.trade_id == 10**12 for e in new)
    assert running.of("gap") == []


def test_out_of_order_data_is_dropped(running: Running, peer: BinanceMarketPeer) -> None:
    running.sync_all()
    # One more applied diff: the book is past the snapshot bridge, where an old diff is expected and not an error.
    peer.push_depth("BTCUSDT")
    running.wait_synced("BTCUSDT")
    tickers_before = len(running.of("top_of_book", "BTCUSDT"))
    peer.push_book_ticker("BTCUSDT", update_id=1)  # older than every ticker so far
    peer.resend_last_diff("BTCUSDT")  # a diff already applied
    running.sync_all()
    assert running.source.counters.out_of_order == 2
    assert running.of("gap") == []
    assert all(e.top_of_book.bid_price > 0 for e in running.of("top_of_book", "BTCUSDT")[tickers_before:])
    assert len(running.of("top_of_book", "BTCUSDT")) == tickers_before + 3


def test_trade_id_gap_emits_a_gap_marker(running: Running, peer: BinanceMarketPeer) -> None:
    peer.push_trade("ETHUSDT", 2)
    peer.push_trade("ETHUSDT", 1, skip_ids=3)
    wait_until(lambda: len(running.of("trade", "ETHUSDT")) == 3, what="three trades")
    gaps = running.of("gap")
    assert [(g.symbol, g.gap.stream) for g in gaps] == [("ETHUSDT", "trade")]


def test_stale_snapshot_is_fetched_again(peer: BinanceMarketPeer) -> None:
    peer.serve_stale_snapshots(1)  # captured before any diff: older than the first one the client buffers
    r = Running(peer)
    try:
        r.sync_all()
        assert r.source.counters.stale_snapshots == 1
        assert peer.snapshot_requests == len(SYMBOLS) + 1
    finally:
        r.close()


def test_rate_limited_snapshot_is_retried(peer: BinanceMarketPeer) -> None:
    peer.rate_limit_snapshots(1)
    r = Running(peer)
    try:
        r.sync_all()
        assert r.source.counters.snapshot_errors == 1
    finally:
        r.close()


def assert_continuous(running: Running, peer: BinanceMarketPeer) -> None:
    """Every trade once and in order, every stream's sequence without a hole, books equal to the peer's."""
    for sym in SYMBOLS:
        running.wait_synced(sym)
        ids = [t.trade.trade_id for t in running.of("trade", sym)]
        assert ids == list(range(ids[0], ids[0] + len(ids))), f"{sym} trades lost or doubled"
        for kind in ("trade", "top_of_book", "depth"):
            events = running.of(kind, sym)
            assert [e.sequence for e in events] == list(range(1, len(events) + 1))


def test_server_shutdown_is_handed_over_make_before_break(peer: BinanceMarketPeer) -> None:
    # An overlap long enough that the data below certainly reaches both connections.
    running = Running(peer, handover_min_overlap_s=3.0)
    try:
        _shutdown_handover(running, peer)
    finally:
        running.close()


def _shutdown_handover(running: Running, peer: BinanceMarketPeer) -> None:
    running.sync_all()
    snapshots = peer.snapshot_requests
    assert peer.send_server_shutdown(close_after_s=None) == 1
    wait_until(lambda: peer.connections_total == 2, what="a second connection")
    # Both connections are open and both get this data: the client reads the old one until the new
    # one's diffs reach back to its books, then switches.
    running.sync_all(rounds=5)
    counters = running.source.counters
    wait_until(lambda: counters.handovers == 1 and peer.open_connections == 1, what="the old connection to close")
    running.sync_all(rounds=5)
    assert counters.server_shutdowns == 1 and counters.overlap_duplicates >= 1
    assert counters.reconnects == 0 and counters.depth_resyncs == 0 and counters.out_of_order == 0
    assert peer.snapshot_requests == snapshots  # no resync: nothing was lost
    assert running.of("gap") == []
    assert_continuous(running, peer)


def test_the_24_hour_cut_is_anticipated_make_before_break() -> None:
    # The peer cuts connections at 2 s (Binance: 24 h); the client replaces its own at 0.7 s.
    with BinanceMarketPeer(SYMBOLS, seed=7, max_connection_age_s=2.0) as peer:
        r = Running(peer, max_connection_age_s=0.7)
        try:
            r.sync_all()
            wait_until(lambda: r.source.counters.handovers >= 2, what="two handovers")
            r.sync_all()
            counters = r.source.counters
            assert counters.proactive_reconnects >= 2 and counters.reconnects == 0
            assert r.of("gap") == [] and counters.depth_resyncs == 0
            assert_continuous(r, peer)
        finally:
            r.close()


def test_a_quiet_connection_is_replaced_by_the_data_watchdog(peer: BinanceMarketPeer) -> None:
    r = Running(peer, data_timeout_s=0.5)
    try:
        r.sync_all()
        assert peer.go_quiet() == 1  # pings are still answered: the keepalive sees nothing wrong
        peer.push_all(2)  # lost on the quiet connection
        wait_until(lambda: r.source.counters.data_timeouts == 1, what="the data watchdog")
        wait_until(lambda: peer.active_connections == 1, what="the replacement connection")
        r.sync_all()
        # Data was lost, and the client says so: a gap per symbol, books rebuilt from new snapshots.
        gaps = r.of("gap")
        assert sorted(g.symbol for g in gaps) == SYMBOLS
        assert all(g.gap.reason.startswith("reconnect (data watchdog") for g in gaps)
        for sym in SYMBOLS:
            r.wait_synced(sym)
    finally:
        r.close()


def test_rest_snapshot_errors_carry_binance_codes(peer: BinanceMarketPeer) -> None:
    with pytest.raises(SnapshotError) as invalid:
        fetch_depth_snapshot(peer.rest_url, "NOPEUSDT", 100, timeout_s=5)
    assert invalid.value.code == -1121
    assert invalid.value.status == 400
    assert invalid.value.permanent
    peer.rate_limit_snapshots(1)
    with pytest.raises(SnapshotError) as limited:
        fetch_depth_snapshot(peer.rest_url, "BTCUSDT", 100, timeout_s=5)
    assert (limited.value.status, limited.value.code, limited.value.retry_after_s) == (429, -1003, 0.0)
    assert not limited.value.permanent
    snapshot = fetch_depth_snapshot(peer.rest_url, "BTCUSDT", 3, timeout_s=5)
    assert len(snapshot.bids) == 3 and len(snapshot.asks) == 3
    assert snapshot.last_update_id == peer.last_update_id("BTCUSDT")


def test_unreachable_venue_backs_off_and_stops_cleanly() -> None:
    settings = IngestSettings(
        binance_ws_url="ws://127.0.0.1:9",  # discard port: nothing listens
        binance_rest_url="http://127.0.0.1:9",
        reconnect_initial_s=0.01,
        reconnect_max_s=0.02,
        open_timeout_s=0.5,
    )
    source = BinanceSource(settings, SYMBOLS)
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(lambda e: None, stop), daemon=True)
    thread.start()
    wait_until(lambda: source.counters.connect_failures >= 3, what="connect attempts")
    assert source.counters.connections == 0
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert all(not s.connected for s in source.stream_status())

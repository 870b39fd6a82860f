"""IngestService on the in-process bus: topics, keys, gap fan-out, recording, GetStatus and Subscribe over gRPC."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from quantumedge.ingest.service import IngestService, build_source
from quantumedge.ingest.settings import IngestSettings
from quantumedge.settings import Settings
from quantumedge.shared import topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.shared.grpc_server import GrpcServer
from quantumedge.shared.market_files import read_table, recorded_files, table_to_events
from quantumedge.v1 import ingest_pb2, ingest_pb2_grpc, market_pb2
from tests.peers.binance_market import BinanceMarketPeer, wait_until

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
T0 = time.time_ns()  # recent, so the recorder's retention keeps what the tests record


class QueueSource:
    """A MarketSource the test feeds by hand (the service under test is real; only the market is scripted)."""

    name = "scripted"

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue()
        self.finish = object()

    def run(self, emit, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                item = self.queue.get(timeout=0.02)
            except queue.Empty:
                continue
            if item is self.finish:
                return
            emit(item)

    def stream_status(self) -> list[ingest_pb2.StreamStatus]:
        return [ingest_pb2.StreamStatus(symbol=s, stream="trade", connected=True, reconnects=2) for s in SYMBOLS]


def trade(symbol: str, i: int) -> market_pb2.MarketEvent:
    ev = market_pb2.MarketEvent(symbol=symbol, exchange_time_ns=T0 + i, receive_time_ns=T0 + i, sequence=i)
    ev.source = "scripted"
    ev.trade.CopyFrom(market_pb2.Trade(price=100.0 + i, quantity=1.0, trade_id=i))
    return ev


def book(symbol: str, i: int) -> market_pb2.MarketEvent:
    ev = market_pb2.MarketEvent(symbol=symbol, exchange_time_ns=T0 + i, receive_time_ns=T0 + i, sequence=i)
    ev.top_of_book.CopyFrom(market_pb2.TopOfBook(bid_price=99, bid_quantity=1, ask_price=101, ask_quantity=1))
    return ev


def depth(symbol: str, i: int) -> market_pb2.MarketEvent:
    ev = market_pb2.MarketEvent(symbol=symbol, exchange_time_ns=T0 + i, receive_time_ns=T0 + i, sequence=i)
    ev.depth.last_update_id = i
    return ev


def gap(symbol: str, i: int) -> market_pb2.MarketEvent:
    ev = market_pb2.MarketEvent(symbol=symbol, exchange_time_ns=T0 + i, receive_time_ns=T0 + i, sequence=i)
    ev.gap.CopyFrom(market_pb2.GapMarker(stream="all", reason="reconnect"))
    return ev


def settings_for(tmp_path: Path, **ingest: object) -> Settings:
    return Settings(bus="memory", symbols=SYMBOLS, data_dir=tmp_path, ingest=IngestSettings(**ingest))


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[tuple[IngestService, QueueSource, MemoryBus]]:
    bus = MemoryBus()
    source = QueueSource()
    service = IngestService(settings_for(tmp_path), bus, source=source)
    service.start()
    yield service, source, bus
    service.stop()


@pytest.fixture
def grpc_stub(scripted) -> Iterator[ingest_pb2_grpc.IngestServiceStub]:
    service = scripted[0]
    server = GrpcServer(0, service.grpc_services(), host="127.0.0.1")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    yield ingest_pb2_grpc.IngestServiceStub(channel)
    channel.close()
    server.stop(0.5)


def _decoded(bus: MemoryBus, topic: str) -> list[tuple[bytes, market_pb2.MarketEvent]]:
    return [(r.key, market_pb2.MarketEvent.FromString(r.value)) for r in bus.read_all(topic)]


def test_events_go_to_their_topic_keyed_by_symbol_and_gaps_to_all(scripted) -> None:
    service, source, bus = scripted
    for i, make in enumerate((trade, book, depth, gap, trade)):
        source.queue.put(make("BTCUSDT", i + 1))
    source.queue.put(trade("ETHUSDT", 9))
    wait_until(lambda: service.published == 6, what="six events published")
    trades = _decoded(bus, topics.TRADES)
    assert [(k, e.trade.trade_id) for k, e in trades if e.HasField("trade")] == [
        (b"BTCUSDT", 1),
        (b"BTCUSDT", 5),
        (b"ETHUSDT", 9),
    ]
    for topic in topics.MARKET:
        kinds = [e.WhichOneof("payload") for _, e in _decoded(bus, topic)]
        assert kinds.count("gap") == 1, f"{topic} carries the gap marker"
    assert [e.WhichOneof("payload") for _, e in _decoded(bus, topics.BOOK)] == ["top_of_book", "gap"]
    assert [e.WhichOneof("payload") for _, e in _decoded(bus, topics.DEPTH)] == ["depth", "gap"]
    assert service.status_line()["gaps"] == 1


def test_get_status_merges_source_and_published_counts(scripted, grpc_stub) -> None:
    service, source, _ = scripted
    for i in range(3):
        source.queue.put(trade("ETHUSDT", i + 1))
    source.queue.put(book("ETHUSDT", 9))
    wait_until(lambda: service.published == 4, what="events published")
    status = grpc_stub.GetStatus(ingest_pb2.IngestServiceGetStatusRequest())
    assert status.source == "scripted" and status.running and status.events_published == 4
    streams = {(s.symbol, s.stream): s for s in status.streams}
    eth = streams[("ETHUSDT", "trade")]
    assert (eth.events, eth.reconnects, eth.connected) == (3, 2, True)
    assert eth.last_event_time_ns == T0 + 3 and eth.events_per_second > 0
    assert streams[("ETHUSDT", "top_of_book")].events == 1
    assert streams[("BTCUSDT", "trade")].events == 0


def test_subscribe_tails_one_symbol_with_a_kind_filter(scripted, grpc_stub) -> None:
    service, source, _ = scripted
    stream = grpc_stub.Subscribe(ingest_pb2.SubscribeRequest(symbol="btcusdt", kinds=["trade", "gap"], max_events=3))
    wait_until(lambda: len(service._subscribers) == 1, what="the subscriber")
    source.queue.put(trade("ETHUSDT", 1))  # another symbol
    source.queue.put(book("BTCUSDT", 2))  # filtered out
    source.queue.put(trade("BTCUSDT", 3))
    source.queue.put(gap("BTCUSDT", 4))
    source.queue.put(trade("BTCUSDT", 5))
    source.queue.put(trade("BTCUSDT", 6))
    got = [r.event for r in stream]  # ends by itself after max_events
    assert [(e.symbol, e.WhichOneof("payload"), e.sequence) for e in got] == [
        ("BTCUSDT", "trade", 3),
        ("BTCUSDT", "gap", 4),
        ("BTCUSDT", "trade", 5),
    ]
    wait_until(lambda: len(service._subscribers) == 0, what="the subscriber to leave")


def test_subscribe_ends_when_the_client_cancels(scripted, grpc_stub) -> None:
    service, source, _ = scripted
    stream = grpc_stub.Subscribe(ingest_pb2.SubscribeRequest(symbol="ETHUSDT"))
    wait_until(lambda: len(service._subscribers) == 1, what="the subscriber")
    source.queue.put(trade("ETHUSDT", 1))
    assert next(stream).event.trade.trade_id == 1
    stream.cancel()
    wait_until(lambda: len(service._subscribers) == 0, what="the server side to end the stream")
    with pytest.raises(grpc.RpcError) as err:
        next(stream)
    assert err.value.code() == grpc.StatusCode.CANCELLED


def test_subscribe_rejects_invalid_arguments(grpc_stub) -> None:
    # One service and server for every case: a refused Subscribe leaves nothing behind for the next.
    for request_, field in (
        (ingest_pb2.SubscribeRequest(), "symbol"),
        (ingest_pb2.SubscribeRequest(symbol="DOGEUSDT"), "DOGEUSDT"),
        (ingest_pb2.SubscribeRequest(symbol="BTCUSDT", kinds=["candles"]), "kinds"),
    ):
        with pytest.raises(grpc.RpcError) as err:
            list(grpc_stub.Subscribe(request_))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in err.value.details()


def test_recording_is_optional_and_off_the_feed(tmp_path: Path) -> None:
    bus = MemoryBus()
    source = QueueSource()
    service = IngestService(settings_for(tmp_path, record=True, record_flush_s=60.0), bus, source=source)
    service.start()
    events = [trade("BTCUSDT", i + 1) for i in range(20)] + [gap("ETHUSDT", 30)]
    for ev in events:
        source.queue.put(ev)
    source.queue.put(source.finish)
    wait_until(service.source_done.is_set, what="the source to finish")
    service.stop()
    files = recorded_files(tmp_path / "recordings")
    assert len(files) == 2
    assert list(table_to_events(read_table(files))) == events
    assert service.status().events_recorded == 21


def test_synthetic_source_runs_bounded_and_sets_source_done(tmp_path: Path) -> None:
    bus = MemoryBus()
    service = IngestService(settings_for(tmp_path, source="synthetic", synthetic_steps=30), bus)
    service.start()
    assert service.source_done.wait(30)
    service.stop()
    assert service.healthy()
    assert sum(bus.end_offsets(topics.TRADES)) > 0
    assert sum(bus.end_offsets(topics.BOOK)) == sum(bus.end_offsets(topics.DEPTH)) == 30 * len(SYMBOLS)
    status = service.status()
    assert status.source == "synthetic" and not status.running
    assert {(s.symbol, s.stream) for s in status.streams} >= {(s, "depth") for s in SYMBOLS}


def test_missing_recordings_make_the_service_unhealthy_with_a_clear_error(tmp_path: Path) -> None:
    service = IngestService(settings_for(tmp_path, source="replay"), MemoryBus())
    service.start()
    assert service.source_done.wait(10)
    service.stop()
    assert not service.healthy()
    assert "no recorded Parquet files" in str(service._error)


def test_replay_source_is_built_from_settings(tmp_path: Path) -> None:
    source = build_source(settings_for(tmp_path, source="replay", replay_speed=2.0))
    assert source.name == "replay" and source.speed == 2.0
    assert source.root == tmp_path / "recordings"


def test_binance_source_through_the_service(tmp_path: Path) -> None:
    with BinanceMarketPeer(SYMBOLS, seed=5) as peer:
        settings = settings_for(
            tmp_path, binance_ws_url=peer.ws_url, binance_rest_url=peer.rest_url, venue="testnet", depth_levels=3
        )
        bus = MemoryBus()
        service = IngestService(settings, bus)
        service.start()
        try:
            wait_until(lambda: peer.active_connections == 1, what="connection")
            peer.push_all(5)

            def caught_up() -> bool:
                streams = {(s.symbol, s.stream): s for s in service.status().streams}
                return all(
                    streams[(sym, "trade")].events == 5 and streams[(sym, "top_of_book")].events == 5 for sym in SYMBOLS
                ) and all(service.source.book_view(sym)[0] == peer.last_update_id(sym) for sym in SYMBOLS)

            wait_until(caught_up, what="every event of the peer")
            status = service.status()
            streams = {(s.symbol, s.stream): s for s in status.streams}
            assert status.source == "binance-testnet"
            assert streams[("BTCUSDT", "depth")].connected
            assert streams[("BTCUSDT", "depth")].book_depth_levels > 0
            assert streams[("BTCUSDT", "trade")].events == 5
            depth_events = [market_pb2.MarketEvent.FromString(r.value) for r in bus.read_all(topics.DEPTH)]
            assert all(len(e.depth.bids) <= 3 and e.source == "binance-testnet" for e in depth_events)
        finally:
            service.stop()
        assert service.healthy()

"""Binance peer -> real client -> IngestService -> a real Kafka broker, through a dropped connection and a gap.

What reaches Kafka: valid MarketEvents only, keyed by symbol, in per-stream sequence order, gap markers on
all three market topics, and a last depth event equal to the peer's book.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from quantumedge.ingest.service import IngestService
from quantumedge.ingest.settings import IngestSettings
from quantumedge.settings import Settings
from quantumedge.shared import topics
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.config import KafkaSettings
from quantumedge.v1 import market_pb2
from tests.peers.binance_market import BinanceMarketPeer, wait_until

pytestmark = pytest.mark.integration

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
LEVELS = 5


@pytest.fixture
def kafka_bus(kafka_bootstrap: str) -> Iterator[KafkaBus]:
    prefix = f"it-ingest-{uuid.uuid4().hex[:8]}."
    bus = KafkaBus(KafkaSettings(bootstrap=kafka_bootstrap, allow_plaintext=True, topic_prefix=prefix, partitions=3))
    bus.ensure_topics()
    yield bus
    bus.close()
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, request_timeout_ms=30_000)
    with contextlib.suppress(Exception):
        admin.delete_topics([t for t in admin.list_topics() if t.startswith(prefix)], timeout_ms=30_000)
    admin.close()


def test_market_data_reaches_kafka_valid_keyed_and_with_gap_markers(kafka_bus: KafkaBus, tmp_path: Path) -> None:
    with BinanceMarketPeer(SYMBOLS, seed=9) as peer:
        ingest = IngestSettings(
            binance_ws_url=peer.ws_url,
            binance_rest_url=peer.rest_url,
            depth_levels=LEVELS,
            reconnect_initial_s=0.01,
            reconnect_max_s=0.05,
            close_timeout_s=0.5,
        )
        settings = Settings(bus="kafka", symbols=SYMBOLS, data_dir=tmp_path, ingest=ingest)
        service = IngestService(settings, kafka_bus)
        service.start()
        source = service.source
        try:
            wait_until(lambda: peer.active_connections == 1, what="connection")
            peer.push_all(5)
            peer.send_malformed("BTCUSDT")
            peer.drop_connections()
            wait_until(lambda: source.counters.reconnects == 1 and peer.active_connections == 1, what="reconnect")
            peer.push_all(3)
            wait_until(lambda: source.book_view("ETHUSDT")[0] == peer.last_update_id("ETHUSDT"), what="ETH resync")
            peer.skip_next_diff("ETHUSDT")  # the book is live: the lost diff must show as a depth gap
            peer.push_all(3)
            for sym in SYMBOLS:
                wait_until(lambda s=sym: source.book_view(s)[0] == peer.last_update_id(s), what=f"{sym} in sync")
                assert source.book_view(sym) == peer.book_state(sym)
        finally:
            service.stop()  # flushes: every record is acknowledged by the broker
        assert service.healthy()

        published = service.published
        seen: list[market_pb2.MarketEvent] = []
        for topic in topics.MARKET:
            for record in kafka_bus.read_all(topic, timeout_s=30):
                event = market_pb2.MarketEvent.FromString(record.value)
                assert record.key == event.symbol.encode(), "keyed by symbol"
                kind = event.WhichOneof("payload")
                assert kind is not None and event.symbol in SYMBOLS and event.source == "binance"
                assert kind == "gap" or topics.market_topic_for(kind) == topic
                seen.append(event)

        gaps = [e for e in seen if e.HasField("gap")]
        non_gaps = [e for e in seen if not e.HasField("gap")]
        # Each gap marker is on all three topics; everything else exactly once.
        assert len(non_gaps) + len(gaps) // 3 == published
        reasons = {(e.symbol, e.gap.stream, e.gap.reason.split(" ")[0]) for e in gaps}
        assert reasons == {
            ("BTCUSDT", "all", "reconnect"),
            ("ETHUSDT", "all", "reconnect"),
            ("ETHUSDT", "depth", "depth"),
        }
        assert len(gaps) == 3 * 3
        # No malformed frame became an event (the bad trade carried trade id 10**12).
        assert not any(e.HasField("trade") and e.trade.trade_id == 10**12 for e in seen)
        for sym in SYMBOLS:
            for kind in ("trade", "top_of_book", "depth"):
                seqs = sorted(e.sequence for e in non_gaps if e.symbol == sym and e.WhichOneof("payload") == kind)
                assert seqs == list(range(1, len(seqs) + 1)), f"{sym} {kind}: no sequence lost on the way"
            last_depth = max(
                (e for e in non_gaps if e.symbol == sym and e.HasField("depth")), key=lambda e: e.sequence
            ).depth
            bids, asks = peer.top(sym, LEVELS)
            assert [(lv.price, lv.quantity) for lv in last_depth.bids] == bids
            assert [(lv.price, lv.quantity) for lv in last_depth.asks] == asks

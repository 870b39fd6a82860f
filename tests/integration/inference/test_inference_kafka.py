"""The inference service on a real Kafka broker, serving the models shipped in models/.

Market events go to the three ingest topics (keyed by symbol, spread over partitions); the service
consumes them as a consumer group, restores their order, and the signals it publishes are exactly
what the offline features and the same models give for the recorded events.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from kafka import KafkaAdminClient

from quantumedge.inference.domain.features import build_offline
from quantumedge.inference.service import InferenceService
from quantumedge.inference.settings import InferenceSettings
from quantumedge.ingest.synthetic import SyntheticMarket
from quantumedge.settings import Settings
from quantumedge.shared import market_files, topics
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.config import REPO_ROOT, KafkaSettings
from quantumedge.v1 import signal_pb2
from tests.support.inference_feed import publish_market, wait_for

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> Iterator[KafkaSettings]:
    settings = KafkaSettings(
        bootstrap=kafka_bootstrap, allow_plaintext=True, topic_prefix=f"inference-it-{uuid.uuid4().hex[:8]}."
    )
    bus = KafkaBus(settings)
    bus.ensure_topics()
    bus.close()
    yield settings
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="qe-test-inference")
    with contextlib.suppress(Exception):
        admin.delete_topics([f"{settings.topic_prefix}{spec.name}" for spec in topics.ALL], timeout_ms=30_000)
    admin.close()


def test_shipped_models_turn_kafka_market_events_into_signals(kafka_settings: KafkaSettings) -> None:
    # A long idle bound: a slow broker pausing between fetches must not look like the end of the stream.
    settings = Settings(
        bus="kafka",
        kafka=kafka_settings,
        symbols=SYMBOLS,
        models_dir=REPO_ROOT / "models",
        inference=InferenceSettings(reorder_idle_ms=3000),
    )
    service_bus = KafkaBus(kafka_settings)
    service = InferenceService(settings, service_bus)
    # Every promoted model serves; the horizons the gate refused are reported, never served.
    assert set(service.models.predictors) == set(SYMBOLS)
    promoted = {(s, h) for (s, h) in service.models.served}
    assert promoted, "the shipped manifest promotes at least one model per symbol"
    assert all("no promoted version" in m for m in service.models.missing)
    service.start()
    producer = KafkaBus(kafka_settings)
    events = list(SyntheticMarket(SYMBOLS, seed=17).events(400))
    try:
        n = publish_market(producer, events)
        assert wait_for(lambda: service.events_seen == n, timeout_s=60)
        print("ordering:", service.order.stats)
        assert service.order.stats.late_dropped == 0
        service.bus.flush()
        signals = [signal_pb2.Signal.FromString(r.value) for r in producer.read_all(topics.SIGNALS)]
    finally:
        service.stop()
        producer.close()
        service_bus.close()

    # Every offline row whose decision time (boundary + row lateness) the stream reaches is decided
    # online; the last boundaries, which no later event closes, are not.
    table = market_files.events_to_table(events)
    lateness_ns = int(settings.inference.row_lateness_ms * 1_000_000)
    offline = {}
    for symbol, feats in build_offline(table).items():
        last_ns = max(e.exchange_time_ns for e in events if e.symbol == symbol)
        offline[symbol] = feats.take(np.flatnonzero(feats.time_ns + lateness_ns <= last_ns))
    assert len(signals) == sum(len(f) for f in offline.values()) > 2 * 200
    for symbol, feats in offline.items():
        online = {s.event_time_ns: s for s in signals if s.symbol == symbol}
        expected = service.models.predictors[symbol].predict(feats.values)
        got = np.array([[p.p_up for p in online[t].predictions] for t in feats.time_ns.tolist()])
        print(f"{symbol}: online (Kafka) vs offline p_up max |dp| = {np.max(np.abs(got - expected)):.3e}")
        np.testing.assert_allclose(got, expected, atol=1e-6)
        assert {p.model_version for s in online.values() for p in s.predictions} == {"v1"}

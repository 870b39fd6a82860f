"""Shadow models on a real Kafka broker: inference publishes the shadow's signals on
inference.shadow_signals.v1 beside the promoted ones, risk (its own consumer group) decides only the
promoted signals, and `models compare` reads both streams and the market back from the broker."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from quantumedge.inference.registry import Registry
from quantumedge.inference.service import InferenceService
from quantumedge.inference.settings import InferenceSettings
from quantumedge.inference.shadow import SHADOW_ID_PREFIX
from quantumedge.ingest.synthetic import SyntheticMarket
from quantumedge.risk.service import RiskService
from quantumedge.settings import Settings
from quantumedge.shared import topics
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.config import REPO_ROOT, KafkaSettings
from quantumedge.training.shadow_cli import compare_on_bus
from quantumedge.v1 import risk_pb2, signal_pb2
from tests.support.inference_feed import publish_market, wait_for
from tests.support.signing import session_signing_settings

SYMBOL = "BTCUSDT"


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> Iterator[KafkaSettings]:
    settings = KafkaSettings(
        bootstrap=kafka_bootstrap, allow_plaintext=True, topic_prefix=f"shadow-it-{uuid.uuid4().hex[:8]}."
    )
    bus = KafkaBus(settings)
    bus.ensure_topics()
    bus.close()
    yield settings
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="qe-test-shadow")
    with contextlib.suppress(Exception):
        admin.delete_topics([f"{settings.topic_prefix}{spec.name}" for spec in topics.ALL], timeout_ms=30_000)
    admin.close()


def _shipped_with_shadow(root: Path) -> tuple[Registry, str]:
    """The shipped registry, with the h30 artifact registered as BTCUSDT h5 and run in shadow."""
    shutil.copytree(REPO_ROOT / "models", root)
    registry = Registry(root)
    doc = registry.load()
    h5, h30 = registry.promoted(SYMBOL, 5, doc), registry.get(SYMBOL, 30, "v1", doc)
    schema = {"hash": h5.feature_schema_hash, **doc["feature_schemas"][h5.feature_schema_hash]}
    meta = {k: getattr(h5, k) for k in ("calibration", "metrics", "params", "label", "data_source", "gate")}
    entry = registry.register(
        SYMBOL, 5, registry.read_verified(h30), {**meta, "drift_reference": h5.drift_reference}, schema
    )
    registry.mark_shadow(SYMBOL, 5, entry.version)
    return registry, entry.version


def test_shadow_signals_reach_the_shadow_topic_on_kafka_and_never_risk(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    registry, version = _shipped_with_shadow(tmp_path / "models")
    settings = Settings(
        bus="kafka",
        kafka=kafka_settings,
        symbols=[SYMBOL],
        models_dir=registry.root,
        inference=InferenceSettings(reorder_idle_ms=3000),
        signing=session_signing_settings(),
    )
    buses = [KafkaBus(kafka_settings) for _ in range(3)]
    inference, risk = InferenceService(settings, buses[0]), RiskService(settings, buses[1])
    assert inference.models.shadow_versions == {(SYMBOL, 5): version}
    risk.start()
    inference.start()
    producer = buses[2]
    try:
        n = publish_market(producer, SyntheticMarket([SYMBOL], seed=17).events(900))
        assert wait_for(lambda: inference.events_seen == n, timeout_s=90)
        inference.stop()  # drains its last rows: nothing more is published after this
        assert wait_for(lambda: risk.engine.counters.signals_seen == inference.signals_published, timeout_s=60)
        primary = [signal_pb2.Signal.FromString(r.value) for r in producer.read_all(topics.SIGNALS)]
        shadow = [signal_pb2.Signal.FromString(r.value) for r in producer.read_all(topics.SHADOW_SIGNALS)]
        decisions = [risk_pb2.RiskDecision.FromString(r.value) for r in producer.read_all(topics.DECISIONS)]
        cmp = compare_on_bus(producer, registry, settings, SYMBOL, 5)
    finally:
        inference.stop()
        risk.stop()
        for bus in buses:
            bus.close()
    assert len(shadow) == len(primary) == inference.shadow_signals_published > 300
    assert {p.model_version for s in shadow for p in s.predictions if p.horizon == 5} == {version}
    assert {p.model_version for s in primary for p in s.predictions} == {"v1"}
    assert all(s.signal_id.startswith(SHADOW_ID_PREFIX) for s in shadow)
    # Risk decided the promoted signals, each once, and not one shadow signal.
    assert sorted({d.signal_id for d in decisions}) == sorted(s.signal_id for s in primary)
    assert not [d for d in decisions if d.signal_id.startswith(SHADOW_ID_PREFIX)]
    assert risk.engine.counters.signals_seen == len(primary)
    # The comparison reads both streams and the market back from the broker.
    print({k: cmp[k] for k in ("rows", "better")}, cmp["promoted"], cmp["shadow"], sep="\n")
    assert cmp["rows"] > 100 and cmp["promoted"]["version"] == "v1" and cmp["shadow"]["version"] == version
    assert cmp["better"] in ("promoted", "shadow", "tie")

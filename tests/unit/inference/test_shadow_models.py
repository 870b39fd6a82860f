"""Shadow models on the in-process bus: scored beside the promoted ones, published apart, never traded;
compared on realised outcomes; promoted or discarded on the figures, never past the gate."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from quantumedge.inference.domain.features import make_schema
from quantumedge.inference.registry import Registry, RegistryError
from quantumedge.inference.service import InferenceService
from quantumedge.inference.settings import InferenceSettings
from quantumedge.inference.shadow import SHADOW_ID_PREFIX
from quantumedge.ingest.synthetic import SyntheticMarket
from quantumedge.risk.service import RiskService
from quantumedge.settings import Settings
from quantumedge.shared import topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.training import dataset, shadow_compare
from quantumedge.training.pipeline import register, train_one
from quantumedge.training.shadow_cli import compare_on_bus, models_main
from quantumedge.v1 import risk_pb2, signal_pb2
from tests.support.inference_feed import SMALL, meta_of, publish_market, refused_meta, wait_for

SYMBOL = "BTCUSDT"


def _signals(bus: MemoryBus, topic: str) -> list[signal_pb2.Signal]:
    return [signal_pb2.Signal.FromString(r.value) for r in bus.read_all(topic)]


def _other_artifact_as_shadow(registry: Registry) -> str:
    """A different model (the h30 artifact) registered as BTCUSDT h5 and marked shadow; returns its version."""
    other = registry.promoted(SYMBOL, 30)
    data = registry.read_verified(other)
    schema = {"hash": other.feature_schema_hash, "names": list(make_schema(SMALL.features).names)}
    entry = registry.register(SYMBOL, 5, data, meta_of(registry, SYMBOL, 5), schema)
    registry.mark_shadow(SYMBOL, 5, entry.version)
    return entry.version


def test_shadow_signals_reach_the_shadow_topic_and_never_risk(registry: Registry) -> None:
    version = _other_artifact_as_shadow(registry)
    assert topics.READERS[topics.SHADOW_SIGNALS] == () and topics.WRITERS[topics.SHADOW_SIGNALS] == ("inference",)
    assert topics.SHADOW_SIGNALS not in topics.topics_read_by("risk")
    bus = MemoryBus()
    settings = Settings(bus="memory", symbols=[SYMBOL], models_dir=registry.root, inference=InferenceSettings())
    inference, risk = InferenceService(settings, bus), RiskService(settings, bus)
    risk.start()
    inference.start()
    try:
        n = publish_market(bus, SyntheticMarket([SYMBOL], seed=4).events(300))
        assert wait_for(lambda: inference.events_seen == n)
        assert wait_for(lambda: inference.shadow_signals_published > 0)
        assert wait_for(lambda: len(bus.read_all(topics.DECISIONS)) == inference.signals_published)
    finally:
        inference.stop()
        risk.stop()
    primary, shadow = _signals(bus, topics.SIGNALS), _signals(bus, topics.SHADOW_SIGNALS)
    assert len(primary) == len(shadow) > 100
    # The same rows, the shadow's version in place of the promoted one on h5 only.
    assert [s.event_time_ns for s in primary] == [s.event_time_ns for s in shadow]
    assert {p.model_version for s in shadow for p in s.predictions if p.horizon == 5} == {version}
    assert {p.model_version for s in primary for p in s.predictions} == {"v1"}
    assert all(s.signal_id == SHADOW_ID_PREFIX + p.signal_id for s, p in zip(shadow, primary, strict=True))
    # Risk decided every promoted signal once and never saw a shadow one.
    decisions = [risk_pb2.RiskDecision.FromString(r.value) for r in bus.read_all(topics.DECISIONS)]
    assert sorted(d.signal_id for d in decisions) == sorted(s.signal_id for s in primary)
    assert not [d for d in decisions if d.signal_id.startswith(SHADOW_ID_PREFIX)]
    assert risk.engine.counters.signals_seen == len(primary)


def test_registry_shadow_promote_refuses_a_failed_gate_and_discard_forgets(registry: Registry) -> None:
    refused = registry.register(
        SYMBOL,
        5,
        registry.read_verified(registry.promoted(SYMBOL, 5)),
        refused_meta(registry, SYMBOL, 5),
        {"hash": registry.promoted(SYMBOL, 5).feature_schema_hash, "names": list(make_schema(SMALL.features).names)},
    )
    with pytest.raises(RegistryError, match="promoted version"):
        registry.mark_shadow(SYMBOL, 5, "v1")
    registry.mark_shadow(SYMBOL, 5, refused.version)  # a shadow needs no gate: it never trades
    assert registry.shadow_version(SYMBOL, 5) == refused.version
    with pytest.raises(RegistryError, match="promotion gate"):
        registry.promote_shadow(SYMBOL, 5)
    assert registry.promoted_version(SYMBOL, 5) == "v1" and registry.shadow_version(SYMBOL, 5) == refused.version
    assert registry.discard_shadow(SYMBOL, 5) == refused.version
    assert registry.shadow_version(SYMBOL, 5) is None and registry.get(SYMBOL, 5, refused.version) is not None


def test_comparison_maths_name_the_model_that_knew(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    truth = rng.uniform(0.05, 0.6, 4000)
    y = (rng.uniform(size=truth.size) < truth).astype(np.int64)
    knew, guessed = shadow_compare.figures(y, truth), shadow_compare.figures(y, rng.permutation(truth))
    assert knew.log_loss < guessed.log_loss and knew.ece < 0.05
    assert shadow_compare.better(promoted=guessed, shadow=knew) == "shadow"
    assert shadow_compare.better(promoted=knew, shadow=guessed) == "promoted"
    assert shadow_compare.better(promoted=knew, shadow=knew) == "tie"
    t = np.arange(10, dtype=np.int64)
    yy, a, b = shadow_compare.join(t[2:], y[2:10], t[:7], truth[:7], t[::2], truth[:10:2])
    assert list(yy) == [y[2], y[4], y[6]] and list(a) == [truth[2], truth[4], truth[6]]
    assert list(b) == [truth[2], truth[4], truth[6]]


def _shuffled_shadow(registry: Registry, recording: Path) -> str:
    """A model trained on the same market with its rows shuffled (features no longer meet their outcomes)."""
    feats = dataset.load_features(recording, [SYMBOL], SMALL.features)[SYMBOL]
    perm = np.random.default_rng(3).permutation(len(feats))
    shuffled = replace(feats, values=feats.values[perm])
    cfg = replace(SMALL, horizons=(5,))
    res = train_one(shuffled, 5, cfg, "shuffled", {"kind": "synthetic", "seed": 11, "shuffled_rows": True})
    res.meta["gate"] = {**res.meta["gate"], "passed": True, "waived": res.meta["gate"]["failures"], "failures": []}
    return register(res, registry, cfg, promote=False, shadow=True).version


def test_comparison_names_the_real_model_over_one_trained_on_shuffled_rows(
    registry: Registry, recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    version = _shuffled_shadow(registry, recording)
    bus = MemoryBus()
    settings = Settings(bus="memory", symbols=[SYMBOL], models_dir=registry.root, inference=InferenceSettings())
    inference = InferenceService(settings, bus)
    inference.start()
    try:
        # A market the models never saw, with the same planted edge.
        n = publish_market(bus, SyntheticMarket([SYMBOL], seed=23).events(2400))
        assert wait_for(lambda: inference.events_seen == n, timeout_s=120)
    finally:
        inference.stop()
    cmp = compare_on_bus(bus, registry, settings, SYMBOL, 5)
    print(json.dumps({k: cmp[k] for k in ("rows", "better")}), cmp["promoted"], cmp["shadow"], sep="\n")
    assert cmp["rows"] > 1000 and cmp["shadow"]["version"] == version and cmp["promoted"]["version"] == "v1"
    assert cmp["promoted"]["log_loss"] < cmp["shadow"]["log_loss"]
    assert cmp["better"] == "promoted"
    for role in ("promoted", "shadow"):
        assert cmp[role]["decisions"]["decisions"] > 0  # every recorded signal went through risk's engine
    # The figures refuse the promotion; discarding ends the shadow run.
    out = tmp_path / "cmp.json"
    out.write_text(json.dumps(cmp))
    argv = ["--models-dir", str(registry.root)]
    assert models_main([*argv, "promote", SYMBOL, "5", "--comparison", str(out)]) == 2
    assert registry.promoted_version(SYMBOL, 5) == "v1"
    assert models_main([*argv, "discard", SYMBOL, "5"]) == 0
    assert registry.shadow_version(SYMBOL, 5) is None

"""The registry: immutable versioned artifacts, a manifest with checksums, explicit promotion, refusals."""

from __future__ import annotations

import json

import pytest

from quantumedge.inference.domain.features import FEATURE_SCHEMA, FeatureConfig, make_schema
from quantumedge.inference.models import ModelsUnavailableError, load_models
from quantumedge.inference.registry import Registry, RegistryError
from tests.support.inference_feed import meta_of, refused_meta

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
HORIZONS = [1, 5, 30]


def _tamper(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_manifest_lists_every_model_with_checksum_schema_fingerprint_metrics_and_promotion(registry: Registry) -> None:
    doc = registry.load()
    assert {(m["symbol"], m["horizon"], m["version"]) for m in doc["models"]} == {
        (s, h, "v1") for s in SYMBOLS for h in HORIZONS
    }
    for entry in registry.entries():
        assert entry.path == f"{entry.symbol}/h{entry.horizon}/v1.onnx"
        assert len(entry.sha256) == 64 and entry.feature_schema_hash == FEATURE_SCHEMA.hash
        assert entry.n_features == FEATURE_SCHEMA.size
        assert len(entry.training_data_fingerprint) == 64 and entry.created_at.endswith("Z")
        wf = entry.metrics["walk_forward"]
        assert {"auc", "log_loss", "brier", "base_log_loss"} <= set(wf["folds"][0]) and wf["pooled"]["n"] > 0
        assert {"log_loss", "brier", "ece", "n"} <= set(entry.metrics["holdout"])
        assert entry.calibration["method"] == "platt" and "a" in entry.calibration
        assert entry.label["kind"] == "triple_barrier" and entry.label["horizon_min"] == entry.horizon
        assert entry.data_source["kind"] == "synthetic" and entry.data_source["holdout_from_ns"] > 0
        # Format 2: the gate's verdict and figures; the fixture waived the gate and says so.
        assert entry.gate["passed"] is True and "waived" in entry.gate and "oos_log_loss" in entry.gate["figures"]
        assert set(entry.drift_reference) and entry.drift_reference
        assert registry.read_verified(entry, FEATURE_SCHEMA.hash)
        assert registry.promoted_version(entry.symbol, entry.horizon) == "v1"
    assert doc["format"] == 2
    assert doc["feature_schemas"][FEATURE_SCHEMA.hash]["names"] == list(FEATURE_SCHEMA.names)


def test_new_versions_never_overwrite_and_promotion_is_explicit(registry: Registry) -> None:
    v1 = registry.promoted("BTCUSDT", 5)
    v1_bytes = (registry.root / v1.path).read_bytes()
    meta = {**meta_of(registry, "BTCUSDT", 5), "training_data_fingerprint": "x" * 64}
    v2 = registry.register("BTCUSDT", 5, b"not really onnx", meta, FEATURE_SCHEMA.to_dict())
    assert v2.version == "v2" and (registry.root / "BTCUSDT/h5/v2.onnx").read_bytes() == b"not really onnx"
    assert (registry.root / v1.path).read_bytes() == v1_bytes
    assert registry.promoted_version("BTCUSDT", 5) == "v1"  # registering does not promote
    registry.promote("BTCUSDT", 5, "v2")
    assert registry.promoted_version("BTCUSDT", 5) == "v2"
    assert not [p for p in registry.root.rglob("*.tmp")], "atomic writes leave no temp files"
    with pytest.raises(RegistryError, match=r"no model BTCUSDT h5 v9 .*known: v1, v2"):
        registry.promote("BTCUSDT", 5, "v9")


def test_a_model_the_gate_refused_is_registered_but_never_promoted(registry: Registry) -> None:
    data = (registry.root / registry.promoted("BTCUSDT", 5).path).read_bytes()
    refused = refused_meta(registry, "BTCUSDT", 5)
    v2 = registry.register("BTCUSDT", 5, data, refused, FEATURE_SCHEMA.to_dict())
    assert registry.get("BTCUSDT", 5, "v2").gate["failures"] == refused["gate"]["failures"]  # figures kept
    with pytest.raises(RegistryError, match=r"BTCUSDT h5 v2 failed the promotion gate.*holdout_trades"):
        registry.promote("BTCUSDT", 5, v2.version)
    before = registry.manifest_path.read_bytes()
    with pytest.raises(RegistryError, match=r"BTCUSDT h5 \(new version\) failed the promotion gate"):
        registry.register("BTCUSDT", 5, data, refused, FEATURE_SCHEMA.to_dict(), promote=True)
    assert registry.manifest_path.read_bytes() == before and not (registry.root / "BTCUSDT/h5/v3.onnx").exists()
    assert registry.promoted_version("BTCUSDT", 5) == "v1"

    # Even a manifest edited by hand to promote it does not get it served.
    with registry._locked() as doc:
        doc["promoted"]["BTCUSDT"]["5"] = "v2"
    models = load_models(registry, SYMBOLS, HORIZONS, FEATURE_SCHEMA, require="none")
    (status,) = [s for s in models.status if (s.symbol, s.horizon) == ("BTCUSDT", 5)]
    assert not status.served and "refused by the promotion gate" in status.problem
    assert ("BTCUSDT", 5) not in models.served and models.predictors["BTCUSDT"].horizons == (1, 30)


def test_tampered_artifact_is_refused_with_the_file_named(registry: Registry) -> None:
    path = registry.root / "BTCUSDT/h1/v1.onnx"
    _tamper(path)
    with pytest.raises(RegistryError, match=f"checksum mismatch for {path}"):
        registry.read_verified(registry.promoted("BTCUSDT", 1))
    with pytest.raises(RegistryError, match="checksum mismatch"):
        registry.promote("BTCUSDT", 1, "v1")

    models = load_models(registry, SYMBOLS, HORIZONS, FEATURE_SCHEMA, require="symbol")
    assert "BTCUSDT" not in models.predictors and "ETHUSDT" in models.predictors
    assert any(str(path) in m and "checksum mismatch" in m for m in models.missing)
    with pytest.raises(ModelsUnavailableError, match=f"BTCUSDT/h1: checksum mismatch for {path}"):
        load_models(registry, SYMBOLS, HORIZONS, FEATURE_SCHEMA, require="service")


def test_feature_schema_mismatch_is_refused(registry: Registry) -> None:
    other = make_schema(FeatureConfig(ema_slow=60))
    with pytest.raises(ModelsUnavailableError, match=r"feature schema mismatch for .*BTCUSDT/h1/v1\.onnx"):
        load_models(registry, SYMBOLS, HORIZONS, other, require="service")

    doc = json.loads(registry.manifest_path.read_text())
    doc["models"][0]["feature_schema_hash"] = "0" * 64  # a model trained on some other definition
    registry.manifest_path.write_text(json.dumps(doc))
    models = load_models(registry, SYMBOLS, HORIZONS, FEATURE_SCHEMA, require="none")
    (status,) = [s for s in models.status if (s.symbol, s.horizon) == (doc["models"][0]["symbol"], 1)]
    assert not status.served and "feature schema mismatch" in status.problem


def test_an_unreadable_manifest_is_an_error_naming_it(tmp_path) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(RegistryError, match=f"{tmp_path / 'manifest.json'} is not valid JSON"):
        Registry(tmp_path).load()
    assert Registry(tmp_path / "nothing").entries() == []

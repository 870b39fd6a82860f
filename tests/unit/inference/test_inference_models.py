"""Loading promoted models: one merged graph per symbol, the require_models policy, safe hot reloads."""

from __future__ import annotations

import numpy as np
import pytest

from quantumedge.inference.domain.features import FEATURE_SCHEMA
from quantumedge.inference.models import ModelsUnavailableError, ensemble, load_models
from quantumedge.inference.registry import Registry
from quantumedge.training.model import onnx_predict
from tests.support.inference_feed import meta_of

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
HORIZONS = [1, 5, 30]


def _unpromote(registry: Registry, symbol: str, horizon: int) -> None:
    with registry._locked() as doc:
        del doc["promoted"][symbol][str(horizon)]


def test_merged_graph_equals_each_artifact_and_the_separate_sessions(registry: Registry, trained) -> None:
    combined = load_models(registry, SYMBOLS, HORIZONS, FEATURE_SCHEMA, combine=True)
    separate = load_models(registry, SYMBOLS, HORIZONS, FEATURE_SCHEMA, combine=False)
    X = np.concatenate([r.holdout_x[:50] for r in trained[1] if r.symbol == "BTCUSDT"])
    pc = combined.predictors["BTCUSDT"]
    assert pc.combined and pc.horizons == (1, 5, 30) and pc.versions == ("v1", "v1", "v1")
    merged = pc.predict(X)
    np.testing.assert_allclose(merged, separate.predictors["BTCUSDT"].predict(X), atol=1e-7)
    for j, h in enumerate(HORIZONS):
        entry = registry.promoted("BTCUSDT", h)
        np.testing.assert_allclose(merged[:, j], onnx_predict((registry.root / entry.path).read_bytes(), X), atol=1e-6)
    assert pc.predict_row(X[0].tolist()) == pytest.approx(merged[0].tolist(), abs=1e-7)


def test_missing_model_stops_the_symbol_or_the_service_or_nothing_as_configured(registry: Registry) -> None:
    _unpromote(registry, "ETHUSDT", 30)
    by_symbol = load_models(registry, SYMBOLS, HORIZONS, FEATURE_SCHEMA, require="symbol")
    assert set(by_symbol.predictors) == {"BTCUSDT"}
    assert by_symbol.missing == [f"ETHUSDT/h30: no promoted version in {registry.manifest_path}"]
    assert "missing: ETHUSDT/h30" in by_symbol.describe()
    eth = [s for s in by_symbol.status if s.symbol == "ETHUSDT"]
    assert not any(s.served for s in eth) and all(s.problem for s in eth)

    lenient = load_models(registry, SYMBOLS, HORIZONS, FEATURE_SCHEMA, require="none")
    assert lenient.predictors["ETHUSDT"].horizons == (1, 5)

    with pytest.raises(ModelsUnavailableError, match="ETHUSDT/h30: no promoted version"):
        load_models(registry, SYMBOLS, HORIZONS, FEATURE_SCHEMA, require="service")


def test_a_refused_promotion_keeps_the_verified_model_serving(registry: Registry) -> None:
    first = load_models(registry, SYMBOLS, HORIZONS, FEATURE_SCHEMA)
    good = (registry.root / "BTCUSDT/h1/v1.onnx").read_bytes()
    meta = meta_of(registry, "BTCUSDT", 1)  # a gate-passed (waived) version, or it could not be promoted
    entry = registry.register("BTCUSDT", 1, good, meta, FEATURE_SCHEMA.to_dict(), promote=True)
    (registry.root / entry.path).write_bytes(good + b"tampered")
    reloaded = load_models(registry, SYMBOLS, HORIZONS, FEATURE_SCHEMA, previous=first)
    (status,) = [s for s in reloaded.status if (s.symbol, s.horizon) == ("BTCUSDT", 1)]
    assert status.served and status.version == "v1"
    assert "checksum mismatch" in status.problem and "still serving v1" in status.problem
    assert reloaded.predictors["BTCUSDT"] is first.predictors["BTCUSDT"]  # unchanged sessions are reused


def test_ensemble_weights_the_horizons() -> None:
    edge, conf = ensemble([0.6, 0.5, 0.3], (1, 5, 30), {1: 1.0, 5: 1.0, 30: 2.0})
    assert conf == pytest.approx((0.6 + 0.5 + 0.6) / 4)
    assert edge == pytest.approx((0.2 + 0.0 - 0.8) / 4)
    assert ensemble([0.7], (1,), {5: 1.0}) == pytest.approx((0.4, 0.7))  # no weight given: equal weights

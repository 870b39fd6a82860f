"""The inference service on the in-process bus with its real gRPC server."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from quantumedge.inference.domain.features import FEATURE_SCHEMA
from quantumedge.inference.models import ModelsUnavailableError
from quantumedge.inference.registry import Registry, RegistryError
from quantumedge.inference.service import InferenceService
from quantumedge.inference.settings import InferenceSettings
from quantumedge.ingest.synthetic import SyntheticMarket
from quantumedge.settings import Settings
from quantumedge.shared import topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.shared.grpc_server import GrpcServer
from quantumedge.v1 import common_pb2, inference_pb2, inference_pb2_grpc, signal_pb2
from tests.support.inference_feed import meta_of, publish_market, refused_meta, wait_for

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def _settings(registry: Registry, **inference: object) -> Settings:
    return Settings(bus="memory", symbols=SYMBOLS, models_dir=registry.root, inference=InferenceSettings(**inference))


class Served:
    def __init__(self, registry: Registry, **inference: object) -> None:
        self.bus = MemoryBus()
        self.service = InferenceService(_settings(registry, **inference), self.bus)
        self.server = GrpcServer(0, self.service.grpc_services(), host="127.0.0.1")
        self.server.start()
        self.service.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.server.port}")
        self.stub = inference_pb2_grpc.InferenceServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()
        self.server.stop(0)
        self.service.stop()
        self.bus.close()

    def signals(self) -> list[signal_pb2.Signal]:
        return [signal_pb2.Signal.FromString(r.value) for r in self.bus.read_all(topics.SIGNALS)]


@pytest.fixture
def served(registry: Registry) -> Iterator[Served]:
    s = Served(registry, reload_poll_s=0.05)
    yield s
    s.close()


def test_market_events_become_signals_with_every_horizon(served: Served) -> None:
    n = publish_market(served.bus, SyntheticMarket(SYMBOLS, seed=4).events(300))
    assert wait_for(lambda: served.service.events_seen == n)
    signals = served.signals()
    # 300 one-second steps: the first book (step 1) is first held by the boundary of step 2, so candidate
    # rows are the boundaries of steps 2..300; 120 of them warm up; a row is decided when the market clock
    # reaches its boundary + 250 ms, which the last boundary (step 300) never sees: 299 - 120 - 1 = 178.
    assert {s.symbol: sum(1 for x in signals if x.symbol == s.symbol) for s in signals} == {
        "BTCUSDT": 178,
        "ETHUSDT": 178,
    }
    sig = signals[-1]
    assert [p.horizon for p in sig.predictions] == [1, 5, 30]
    assert all(p.model_version == "v1" and 0 < p.p_up < 1 for p in sig.predictions)
    assert -1 < sig.edge < 1 and 0 < sig.confidence < 1
    assert sig.regime != common_pb2.REGIME_UNSPECIFIED and sig.mid_price > 0 and sig.spread_bps > 0
    assert sig.signal_id == f"{sig.symbol}-{sig.event_time_ns}"
    status = served.stub.GetStatus(inference_pb2.InferenceServiceGetStatusRequest())
    assert status.signals_published == len(signals) and status.events_seen == n
    assert dict(status.warmed_up) == {"BTCUSDT": True, "ETHUSDT": True} and list(status.missing) == []


def test_predict_checks_its_arguments(served: Served) -> None:
    ok = served.stub.Predict(inference_pb2.PredictRequest(symbol="BTCUSDT", features=[0.0] * FEATURE_SCHEMA.size))
    assert [p.horizon for p in ok.signal.predictions] == [1, 5, 30]
    assert ok.signal.regime == common_pb2.REGIME_LOW_VOL_RANGE
    with pytest.raises(grpc.RpcError) as err:
        served.stub.Predict(inference_pb2.PredictRequest(symbol="BTCUSDT", features=[0.0] * 3))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"expected {FEATURE_SCHEMA.size} values" in err.value.details() and "got 3" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        served.stub.Predict(inference_pb2.PredictRequest(symbol="DOGEUSDT", features=[0.0] * FEATURE_SCHEMA.size))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "DOGEUSDT" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        bad = [0.0] * FEATURE_SCHEMA.size
        bad[2] = float("nan")
        served.stub.Predict(inference_pb2.PredictRequest(symbol="BTCUSDT", features=bad))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and FEATURE_SCHEMA.names[2] in err.value.details()


def test_list_models_and_hot_reload_on_promotion(served: Served, registry: Registry) -> None:
    listed = served.stub.ListModels(inference_pb2.ListModelsRequest())
    assert list(listed.feature_names) == list(FEATURE_SCHEMA.names)
    assert {(m.symbol, m.horizon, m.version, m.served) for m in listed.models} == {
        (s, h, "v1", True) for s in SYMBOLS for h in (1, 5, 30)
    }
    # A new version is registered (not served) and then promoted: the manifest watch picks it up.
    data = (registry.root / "ETHUSDT/h5/v1.onnx").read_bytes()
    registry.register("ETHUSDT", 5, data, meta_of(registry, "ETHUSDT", 5), FEATURE_SCHEMA.to_dict())
    listed = served.stub.ListModels(inference_pb2.ListModelsRequest())
    assert ("ETHUSDT", 5, "v2", False) in {(m.symbol, m.horizon, m.version, m.served) for m in listed.models}
    registry.promote("ETHUSDT", 5, "v2")
    assert wait_for(lambda: served.service.models.predictors["ETHUSDT"].versions == ("v1", "v2", "v1"))
    # ReloadModels answers with what is served now.
    reply = served.stub.ReloadModels(inference_pb2.ReloadModelsRequest())
    assert ("ETHUSDT", 5, "v2", True) in {(m.symbol, m.horizon, m.version, m.served) for m in reply.models}
    # A version the gate refused is registered, cannot be promoted, and a hand-edited manifest promoting
    # it anyway does not get it served: the reload keeps serving v2.
    registry.register("ETHUSDT", 5, data, refused_meta(registry, "ETHUSDT", 5), FEATURE_SCHEMA.to_dict())
    with pytest.raises(RegistryError, match="failed the promotion gate"):
        registry.promote("ETHUSDT", 5, "v3")
    with registry._locked() as doc:
        doc["promoted"]["ETHUSDT"]["5"] = "v3"
    reply = served.stub.ReloadModels(inference_pb2.ReloadModelsRequest())
    assert served.service.models.predictors["ETHUSDT"].versions == ("v1", "v2", "v1")
    (eth5,) = [m for m in reply.models if (m.symbol, m.horizon) == ("ETHUSDT", 5)]
    assert (eth5.version, eth5.served, eth5.gate_passed) == ("v2", True, True)  # reported as the model served
    assert "refused by the promotion gate" in eth5.problem and "holdout_trades" in eth5.problem


def test_start_up_reports_and_enforces_missing_models(registry: Registry) -> None:
    with registry._locked() as doc:
        del doc["promoted"]["ETHUSDT"]
    with pytest.raises(ModelsUnavailableError, match="ETHUSDT/h1: no promoted version"):
        InferenceService(_settings(registry, require_models="service"), MemoryBus())
    s = Served(registry, require_models="symbol")
    try:
        status = s.stub.GetStatus(inference_pb2.InferenceServiceGetStatusRequest())
        assert sorted(status.missing) == sorted(
            f"ETHUSDT/h{h}: no promoted version in {registry.manifest_path}" for h in (1, 5, 30)
        )
        served = {(m.symbol, m.horizon) for m in status.models if m.served}
        assert served == {("BTCUSDT", h) for h in (1, 5, 30)}
        n = publish_market(s.bus, SyntheticMarket(SYMBOLS, seed=4).events(150))
        assert wait_for(lambda: s.service.events_seen == n)
        assert {x.symbol for x in s.signals()} == {"BTCUSDT"}  # ETHUSDT stopped, not silently half-served
    finally:
        s.close()

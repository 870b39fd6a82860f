"""The inference service: online features and the promoted models on the bus, plus its gRPC API.

Consumes ingest.book/depth/trades.v1, restores each symbol's event order (ordering.py), builds
feature rows (features.py, the same code training uses), runs the symbol's models in ONNX Runtime
and publishes a Signal on inference.signals.v1 for every row. Models come from the registry: only
promoted, checksum- and schema-verified ones; the manifest is watched and a promotion is picked up
without a restart (ReloadModels does it at once).
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

from quantumedge.inference.app import InferenceApp
from quantumedge.inference.domain.drift import DriftGuard
from quantumedge.inference.domain.features import IDX_HIGH_VOL, IDX_SPREAD, IDX_TREND_DIR, FeatureRow, regime_of
from quantumedge.inference.models import ModelSet, ModelsUnavailableError, load_models
from quantumedge.inference.registry import Registry, RegistryError
from quantumedge.inference.shadow import attach_shadows
from quantumedge.inference.signals import signal_for_row
from quantumedge.shared import topics
from quantumedge.shared.bus import Bus, Record
from quantumedge.shared.bus.loop import ConsumerLoop, admit
from quantumedge.shared.grpc_server import ServiceBinding, refuse_invalid
from quantumedge.shared.logs import get_logger
from quantumedge.shared.observe import Gauges
from quantumedge.shared.service import ServiceBase
from quantumedge.shared.telemetry import meter
from quantumedge.v1 import inference_pb2, inference_pb2_grpc, market_pb2

if TYPE_CHECKING:
    from quantumedge.settings import Settings  # the root the runner hands in; no run-time import

log = get_logger(__name__)
_meter = meter("inference")
_signals = _meter.create_counter("qe.inference.signals", description="signals published")
_latency = _meter.create_histogram("qe.inference.row_latency", unit="us", description="features + models per row")

_gauges = Gauges("inference")
_gauges.gauge(
    "qe.inference.prediction_drift",
    lambda svc: [(v, {"symbol": s, "horizon": h}) for s, h, v in svc.app.prediction_drift.values()],
    "|live mean p_up - the model's training base rate| (EMA)",
)
_gauges.gauge(
    "qe.inference.models_served",
    lambda svc: [(1.0, {"symbol": s, "horizon": h, "version": m.entry.version}) for (s, h), m in svc.served_models()],
    "1 per model being served, labelled with its version",
)

TICK_S = 0.01  # how often held events are released and the manifest is checked


class _ServiceObserver:
    """The app's rows and signals as the service's OpenTelemetry instruments."""

    def __init__(self) -> None:
        self._t0 = 0

    def row_started(self, row: FeatureRow) -> None:
        self._t0 = time.perf_counter_ns()

    def signal_published(self, row: FeatureRow, signal: Any) -> None:
        _signals.add(1, {"symbol": row.symbol})
        _latency.record((time.perf_counter_ns() - self._t0) / 1000.0, {"symbol": row.symbol})


class InferenceService(ServiceBase):
    name = "inference"

    def __init__(self, settings: Settings, bus: Bus, clock: Callable[[], int] = time.time_ns) -> None:
        super().__init__(settings, bus)
        cfg = settings.inference
        self.cfg = cfg
        self.clock = clock
        self.symbols = list(settings.symbols)
        self.horizons = [int(h) for h in cfg.horizons]
        self.registry = Registry(settings.models_dir)
        # Inference's one wiring (app.py), as the backtester runs it; its signals go straight to the bus.
        self.app = InferenceApp(cfg, bus.publish, observer=_ServiceObserver())
        self.schema = self.app.schema
        # One lock around the app (features, ordering, the live predictors): the consumer thread, the ticker
        # and gRPC threads all touch it.
        self.lock = threading.RLock()
        self._reload_lock = threading.Lock()
        self.ignored_symbols = 0
        self._loop: ConsumerLoop | None = None
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._manifest_stamp = self._stamp()
        self.app.swap_models(self._load(previous=None))
        self.servicer = InferenceServicer(self)
        _gauges.add_owner(self)

    # The app's state, read where tests and the status line look.
    models = property(lambda self: self.app.models)
    features = property(lambda self: self.app.features)
    order = property(lambda self: self.app.order)
    rowclock = property(lambda self: self.app.rowclock)
    events_seen = property(lambda self: self.app.events_seen)
    signals_published = property(lambda self: self.app.signals_published)
    shadow_signals_published = property(lambda self: self.app.shadow_signals_published)

    def served_models(self) -> list[tuple[tuple[str, int], Any]]:
        models = self.models
        return [(key, m) for key, m in sorted(models.served.items()) if key[0] in models.predictors]

    # -- models ------------------------------------------------------------------------------------------
    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.registry.manifest_path.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    @property
    def observing(self) -> bool:
        return self.settings.execution.mode == "observe"

    @property
    def synthetic_allowed(self) -> bool:
        """Synthetic-trained models serve on the paper venue, or where explicitly allowed; observe-only on a
        real feed (ingest.source binance/capture/replay) refuses them unless allowed too."""
        if self.cfg.allow_synthetic_models:
            return True
        if self.observing:
            return self.settings.ingest.source == "synthetic"
        return self.settings.execution.venue == "paper"

    def _load(self, previous: ModelSet | None) -> ModelSet:
        models = load_models(
            self.registry,
            self.symbols,
            self.horizons,
            self.schema,
            # Observe-only trades nothing: a missing model is reported, never a reason to refuse to start.
            require="none" if self.observing else self.cfg.require_models,
            combine=self.cfg.combine_horizons,
            previous=previous,
            allow_synthetic=self.synthetic_allowed,
        )
        attach_shadows(models, self.registry, self.symbols, self.horizons, self.schema, self.cfg.combine_horizons)
        served = models.served_pairs()
        log.info(
            "models loaded" if previous is None else "models reloaded",
            extra={
                "registry": str(self.registry.root),
                "served": served,
                "missing": models.missing,
                "require_models": self.cfg.require_models,
                "combined_graph": all(p.combined for p in models.predictors.values()),
                "shadow": [f"{s}/h{h} {v}" for (s, h), v in sorted(models.shadow_versions.items())],
            },
        )
        for problem in models.shadow_problems:
            log.warning("shadow model not scored", extra={"problem": problem})
        for st in models.status:
            log.info(
                "model report",
                extra={
                    "symbol": st.symbol,
                    "horizon_min": st.horizon,
                    "version": st.version,
                    "served": st.served,
                    "data_source": st.data_source,
                    "gate_passed": st.gate.get("passed"),
                    "gate_figures": st.gate.get("figures", {}),
                },
            )
            if st.problem:
                log.warning(
                    "model not served" if not st.served else "model problem",
                    extra={"symbol": st.symbol, "horizon": st.horizon, "problem": st.problem},
                )
        unserved = [s for s in self.symbols if s not in models.predictors]
        if unserved:
            log.warning("symbols without signals", extra={"symbols": unserved, "reason": "missing models"})
        return models

    def reload(self) -> ModelSet:
        """Re-read the manifest and swap in what verifies; keep serving the old models otherwise."""
        with self._reload_lock:
            self._manifest_stamp = self._stamp()
            try:
                models = self._load(previous=self.models)
            except (ModelsUnavailableError, RegistryError) as exc:
                log.error("model reload refused, keeping the loaded models", extra={"error": str(exc)})
                return self.models
            with self.lock:
                self.app.swap_models(models)
            return models

    # -- lifecycle ---------------------------------------------------------------------------------------
    def grpc_services(self) -> list[ServiceBinding]:
        return [
            (
                inference_pb2_grpc.add_InferenceServiceServicer_to_server,
                self.servicer,
                "quantumedge.v1.InferenceService",
            )
        ]

    def start(self) -> None:
        handlers = {topics.BOOK: self.on_market, topics.DEPTH: self.on_market, topics.TRADES: self.on_market}
        self._loop = ConsumerLoop(self.bus, group=self.name, handlers=handlers)
        self._loop.start()
        self._ticker = threading.Thread(target=self._tick, name="inference-ticker", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._loop is not None:
            self._loop.stop()
        if self._ticker is not None:
            self._ticker.join(5)
        with self.lock:
            self.app.drain()
        self.bus.flush()

    def healthy(self) -> bool:
        return self._loop is None or (self._loop.alive and self._loop.error is None)

    def status_line(self) -> dict[str, Any]:
        return {
            "served": self.models.served_pairs(),
            "missing": len(self.models.missing),
            "events": self.events_seen,
            "signals": self.signals_published,
            "shadow_signals": self.shadow_signals_published,
        }

    def _tick(self) -> None:
        last_check = time.monotonic()
        while not self._stop.wait(TICK_S):
            try:
                quiet = self._loop is None or self._loop.caught_up
                with self.lock:
                    self.app.flush(self.clock(), quiet)
                poll = self.cfg.reload_poll_s
                if poll and time.monotonic() - last_check >= poll:
                    last_check = time.monotonic()
                    if self._stamp() != self._manifest_stamp:
                        self.reload()
            except Exception:  # the ticker must survive anything one event or one reload does
                log.exception("inference ticker error")

    def tick(self, now_ns: int) -> None:
        """The present moved (the lockstep market clock, registered in embedded.py): decide every row due by
        now_ns and publish its signal before the market events of that moment reach risk."""
        with self.lock:
            self.app.tick(now_ns)

    # -- the live path -----------------------------------------------------------------------------------
    def on_market(self, event: market_pb2.MarketEvent, record: Record) -> None:
        if event.symbol not in self.symbols:
            self.ignored_symbols += 1
            return
        with self.lock:
            admit(self.app.on_market(event, self.clock()))  # a refused event is dead-lettered, never applied

    # -- gRPC helpers ------------------------------------------------------------------------------------
    def model_infos(self, models: ModelSet | None = None) -> list[inference_pb2.ModelInfo]:
        models = models or self.models
        return [
            inference_pb2.ModelInfo(
                symbol=st.symbol,
                horizon=st.horizon,
                version=st.version,
                sha256=st.sha256,
                feature_schema_hash=st.feature_schema_hash,
                served=st.served and st.symbol in models.predictors,
                problem=st.problem,
                **model_report_fields(st, self.app.drift_guard(st.symbol)),
            )
            for st in models.status
        ]


def model_report_fields(st, guard: DriftGuard | None) -> dict[str, Any]:
    """The start-up model report's and GetStatus's figures: source, gate, live drift."""
    gate = st.gate or {}
    figures = {k: float(v) for k, v in (gate.get("figures") or {}).items() if isinstance(v, int | float)}
    d = guard.status if guard is not None else None
    return {
        "data_source": st.data_source,
        "gate_passed": gate.get("passed") is True,
        "gate_failures": list(gate.get("failures", [])),
        "gate_figures": figures,
        "drift": bool(d and d.drift),
        "drift_reason": d.reason if d else "",
        "drift_psi": d.max_psi if d else 0.0,
        "drift_out_of_range": d.out_of_range if d else 0.0,
    }


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, service: InferenceService) -> None:
        self.svc = service

    def GetStatus(self, request, context):
        svc = self.svc
        app = svc.app
        with svc.lock:
            warmed = app.warmed_up(svc.symbols)
            drift = app.prediction_drift_by_model()
        return inference_pb2.InferenceServiceGetStatusResponse(
            models=svc.model_infos(),
            events_seen=app.events_seen,
            signals_published=app.signals_published,
            warmed_up=warmed,
            missing=list(app.models.missing),
            prediction_drift=drift,
        )

    def Predict(self, request, context):
        svc = self.svc
        if not request.symbol:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "symbol is required")
        n = svc.schema.size
        if len(request.features) != n:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"features: expected {n} values in feature-schema order (see ListModels.feature_names), "
                f"got {len(request.features)}",
            )
        values = list(request.features)
        bad = [svc.schema.names[i] for i, v in enumerate(values) if not math.isfinite(v)]
        if bad:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"features: non-finite values for {', '.join(bad)}")
        # After the per-feature check, which names the feature; this one bounds sizes and magnitudes.
        refuse_invalid(request, context)
        predictor = svc.app.predictor(request.symbol)
        if predictor is None:
            served = ", ".join(svc.app.served_symbols()) or "none"
            context.abort(grpc.StatusCode.NOT_FOUND, f"symbol {request.symbol} is not served (served: {served})")
        now = svc.clock()
        row = FeatureRow(
            request.symbol, now, values, regime_of(values[IDX_HIGH_VOL], values[IDX_TREND_DIR]), 0.0, values[IDX_SPREAD]
        )
        signal = signal_for_row(row, predictor, svc.app.weights, now)
        signal.signal_id = f"predict-{uuid.uuid4()}"  # not from market data: never mistaken for a live signal
        return inference_pb2.PredictResponse(signal=signal)

    def ListModels(self, request, context):
        svc = self.svc
        models = svc.models
        infos = []
        try:
            doc = svc.registry.load()
            entries = svc.registry.entries(doc)
        except RegistryError as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        served = {(s, h): m.entry.version for (s, h), m in models.served.items() if s in models.predictors}
        listed = set()
        for e in entries:
            listed.add((e.symbol, e.horizon, e.version))
            problem = ""
            if e.feature_schema_hash != svc.schema.hash:
                problem = "feature schema differs from this build"
            infos.append(
                inference_pb2.ModelInfo(
                    symbol=e.symbol,
                    horizon=e.horizon,
                    version=e.version,
                    sha256=e.sha256,
                    feature_schema_hash=e.feature_schema_hash,
                    served=served.get((e.symbol, e.horizon)) == e.version,
                    problem=problem,
                )
            )
        for info in svc.model_infos(models):  # symbol x horizon with nothing registered, with the reason
            if (info.symbol, info.horizon, info.version) not in listed:
                infos.append(info)
        return inference_pb2.ListModelsResponse(models=infos, feature_names=list(svc.schema.names))

    def ReloadModels(self, request, context):
        models = self.svc.reload()
        return inference_pb2.ReloadModelsResponse(models=self.svc.model_infos(models))

"""Inference's one wiring: what inference does with a market event, or because time passed, and what it
publishes then. The service (inference/service.py) runs it on the bus; the backtester runs the same object
on an in-memory outbox, so the two cannot part.

An event passes the market guard, goes through the row clock (reorder buffer, features); each row due is
checked by its symbol's drift guard, scored by its predictor and published as a Signal (signals.py), with
the shadow models' signal beside it and the prediction drift updated.

No threads, locks, gRPC, Kafka, registry or wall clock: time comes in as now_ns, signals leave through
`publish` (Bus.publish's signature), metrics through an `InferenceObserver`. The caller serialises calls (the
service holds its lock). Loading models is I/O and stays in the service: it hands the app a ModelSet
(`swap_models`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from google.protobuf.message import Message

from quantumedge.inference.domain.drift import DriftGuard, DriftStatus
from quantumedge.inference.domain.features import FeatureRow, OnlineFeatures
from quantumedge.inference.domain.ordering import ReorderBuffer
from quantumedge.inference.domain.prediction_drift import PredictionDrift, training_base_rate
from quantumedge.inference.domain.rowclock import RowClock
from quantumedge.inference.models import ModelSet, SymbolPredictor
from quantumedge.inference.settings import InferenceSettings
from quantumedge.inference.shadow import SHADOW_ID_PREFIX
from quantumedge.inference.signals import drift_guards, signal_for_row
from quantumedge.shared import bounds, topics
from quantumedge.v1 import market_pb2, signal_pb2

Publish = Callable[[str, "str | None", Message], None]
# A row due now -> the signal to publish (None = no signal): the models by default, an oracle in backtests.
SignalSource = Callable[[FeatureRow, int], "signal_pb2.Signal | None"]


class InferenceObserver(Protocol):
    """What inference reports about itself (the service records OpenTelemetry metrics; default: nothing)."""

    def row_started(self, row: FeatureRow) -> None: ...

    def signal_published(self, row: FeatureRow, signal: signal_pb2.Signal) -> None: ...


class NoObserver:
    def row_started(self, row: FeatureRow) -> None:
        pass

    def signal_published(self, row: FeatureRow, signal: signal_pb2.Signal) -> None:
        pass


class InferenceApp:
    name = "inference"

    def __init__(
        self,
        cfg: InferenceSettings,
        publish: Publish,
        models: ModelSet | None = None,
        observer: InferenceObserver | None = None,
        signal_source: SignalSource | None = None,
    ) -> None:
        self.cfg = cfg
        self.publish = publish
        self.observer: InferenceObserver = observer or NoObserver()
        self.signal_source = signal_source
        self.weights = {int(k): float(v) for k, v in cfg.ensemble_weights.items()}
        self.features = OnlineFeatures()
        self.schema = self.features.schema
        self.order = ReorderBuffer(
            max_hold_ns=int(cfg.reorder_max_hold_ms * 1e6),
            max_buffered=cfg.reorder_max_buffered,
            idle_ns=int(cfg.reorder_idle_ms * 1e6),
        )
        self.rowclock = RowClock(self.features, self.order, int(cfg.row_lateness_ms * 1e6))
        # Every consumed event is checked against the last good one for its symbol before the features see it:
        # one absurd trade once made every later row of its symbol fail.
        self.market_guard = bounds.MarketGuard()
        # The live mean p_up per model against its training base rate (a metric), apart from the feature guard.
        self.prediction_drift = PredictionDrift()
        self.models = ModelSet()
        self.drift: dict[str, DriftGuard] = {}
        self.events_seen = 0
        self.rows = 0
        self.signals_published = 0
        self.shadow_signals_published = 0
        self.swap_models(models if models is not None else ModelSet())

    # -- models ------------------------------------------------------------------------------------
    def swap_models(self, models: ModelSet) -> None:
        """Serve `models` from now on; each served symbol's drift guard starts afresh on its reference."""
        self.drift = drift_guards(models, list(self.schema.names), self.cfg)
        for (symbol, horizon), model in models.served.items():
            self.prediction_drift.set_base_rate(symbol, horizon, training_base_rate(model.entry))
        self.models = models

    # -- the live path -----------------------------------------------------------------------------
    def admit(self, event: market_pb2.MarketEvent) -> bounds.Problem | None:
        """The market guard's verdict; a refused event must not be pushed (the bus dead-letters it)."""
        return self.market_guard.admit(event)

    def on_market(self, event: market_pb2.MarketEvent, now_ns: int) -> bounds.Problem | None:
        """An event consumed at now_ns: admitted, then the rows due at its time are decided before it is applied."""
        problem = self.admit(event)
        if problem is not None:
            return problem
        self.events_seen += 1
        for row in self.rowclock.push(event, now_ns):
            self._decide(row, now_ns)
        return None

    def flush(self, now_ns: int, quiet: bool = True) -> None:
        """Release what waited too long for a quiet stream, decide rows due (the service's ticker, wall clock)."""
        for row in self.rowclock.flush_due(now_ns, quiet):
            self._decide(row, now_ns)

    def tick(self, now_ns: int) -> None:
        """The run's present moved (a market clock): decide every row due by now_ns (rowclock.RowClock.tick)."""
        for row in self.rowclock.tick(now_ns):
            self._decide(row, now_ns)

    def drain(self) -> None:
        """The stream ended: apply what is held; rows not yet due are never decided."""
        self.rowclock.drain()

    def _decide(self, row: FeatureRow, now_ns: int) -> None:
        """A row due now: drift guard, models, signal, shadow signal, prediction drift."""
        self.observer.row_started(row)
        self.rows += 1
        signal, drift = self._signal(row, now_ns)
        if signal is None:
            return
        self.publish(topics.SIGNALS, row.symbol, signal)
        self.signals_published += 1
        shadow = self.models.shadow.get(row.symbol)
        if shadow is not None and self.signal_source is None:
            # The same row, the same drift verdict, the shadow versions: published where no service reads.
            shadow_signal = signal_for_row(row, shadow, self.weights, now_ns, drift)
            shadow_signal.signal_id = SHADOW_ID_PREFIX + shadow_signal.signal_id
            self.publish(topics.SHADOW_SIGNALS, row.symbol, shadow_signal)
            self.shadow_signals_published += 1
        for prediction in signal.predictions:
            self.prediction_drift.update(row.symbol, prediction.horizon, prediction.p_up)
        self.observer.signal_published(row, signal)

    def _signal(self, row: FeatureRow, now_ns: int) -> tuple[signal_pb2.Signal | None, DriftStatus | None]:
        """The row's signal and its drift verdict: the injected source's, else the guard's and the models'."""
        if self.signal_source is not None:
            return self.signal_source(row, now_ns), None
        guard = self.drift.get(row.symbol)
        drift = guard.update(row.values) if guard is not None else None
        predictor = self.models.predictors.get(row.symbol)
        if predictor is None:
            return None, drift
        return signal_for_row(row, predictor, self.weights, now_ns, drift), drift

    # -- queries (the gRPC servicer asks these) ----------------------------------------------------
    def predictor(self, symbol: str) -> SymbolPredictor | None:
        return self.models.predictors.get(symbol)

    def served_symbols(self) -> list[str]:
        return sorted(self.models.predictors)

    def warmed_up(self, symbols: list[str]) -> dict[str, bool]:
        return {s: self.features.warmed_up(s) for s in symbols}

    def drift_guard(self, symbol: str) -> DriftGuard | None:
        return self.drift.get(symbol)

    def prediction_drift_by_model(self) -> Mapping[str, float]:
        return {f"{s}/h{h}": v for s, h, v in self.prediction_drift.values()}

"""One backtest: market events through the same features, models, risk engine and execution engine as
the services, on the paper venue, with every clock driven by the events' own time.

The wiring mirrors the services on the bus: every market event reaches execution (paper fills, marks,
time stops), risk (freshness, marks) and inference (reorder buffer, features, models); a row's signal is
decided by risk and an approved intent goes to execution; every execution report goes back to risk; a
limit breach that halts risk halts execution as the control topic would. No Kafka, no gRPC, no files:
the caller gives the events and the loaded models and gets a `BacktestResult`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from quantumedge.execution.convert import position_to_pb
from quantumedge.execution.engine import EngineConfig, ExecutionEngine, ListEmitter
from quantumedge.execution.venue import paper_venue
from quantumedge.inference.features import OnlineFeatures
from quantumedge.inference.models import ModelSet
from quantumedge.inference.ordering import ReorderBuffer
from quantumedge.inference.signals import signal_for_row
from quantumedge.risk.engine import RiskEngine
from quantumedge.risk.limits import Breach
from quantumedge.shared.config import Settings
from quantumedge.v1 import execution_pb2, market_pb2, risk_pb2

Progress = Callable[[int], None]


@dataclass(frozen=True)
class EquityPoint:
    time_ns: int
    equity: float
    realized_pnl: float
    unrealized_pnl: float


@dataclass(frozen=True)
class HaltRecord:
    time_ns: int
    limit: str
    detail: str


@dataclass
class BacktestResult:
    symbols: list[str]
    starting_equity: float
    events: int = 0
    rows: int = 0
    first_time_ns: int = 0
    last_time_ns: int = 0
    signals: int = 0
    decisions: list[risk_pb2.RiskDecision] = field(default_factory=list)
    reports: list[execution_pb2.ExecutionReport] = field(default_factory=list)
    equity: list[EquityPoint] = field(default_factory=list)
    halts: list[HaltRecord] = field(default_factory=list)
    final_positions: list[execution_pb2.Position] = field(default_factory=list)
    halted_at_end: bool = False


def event_time_ns(event: market_pb2.MarketEvent) -> int:
    """The time the system would have seen the event at (bookTicker frames carry no exchange time)."""
    return event.exchange_time_ns or event.receive_time_ns


class Backtest:
    """Feed events in time order with `run`; read the result. One instance is one run."""

    def __init__(self, settings: Settings, models: ModelSet, equity_interval_ns: int = 1_000_000_000) -> None:
        self.settings = settings
        self.models = models
        self.symbols = list(settings.symbols)
        inf = settings.inference
        self.weights = {int(k): float(v) for k, v in inf.ensemble_weights.items()}
        self.features = OnlineFeatures()
        self.order = ReorderBuffer(
            max_hold_ns=int(inf.reorder_max_hold_ms * 1e6),
            max_buffered=inf.reorder_max_buffered,
            idle_ns=int(inf.reorder_idle_ms * 1e6),
        )
        self.risk = RiskEngine(settings.risk)
        self.emitter = ListEmitter()
        ex = settings.execution
        self.execution = ExecutionEngine(
            paper_venue(settings),
            self.emitter,
            EngineConfig(
                starting_equity=Decimal(repr(ex.starting_equity)),
                symbols=tuple(self.symbols),
                mark_report_interval_ns=ex.mark_report_interval_ms * 1_000_000,
            ),
            clock=lambda: self.now_ns,
        )
        self.heartbeat_ns = int(ex.heartbeat_interval_s * 1e9)
        self.equity_interval_ns = equity_interval_ns
        self.now_ns = 0
        self._next_heartbeat = 0
        self._next_equity = 0
        self._delivered = 0  # reports already handed to risk
        self.result = BacktestResult(self.symbols, float(ex.starting_equity))

    # -- the loop ----------------------------------------------------------------------------------
    def run(self, events: Iterable[market_pb2.MarketEvent], progress: Progress | None = None) -> BacktestResult:
        wanted = set(self.symbols)
        for event in events:
            if event.symbol not in wanted:
                continue
            self.step(event)
            if progress is not None:
                progress(1)
        return self.finish()

    def step(self, event: market_pb2.MarketEvent) -> None:
        t = event_time_ns(event)
        if t > self.now_ns:
            self.now_ns = t
        res = self.result
        res.events += 1
        res.first_time_ns = res.first_time_ns or self.now_ns
        res.last_time_ns = self.now_ns
        if self._next_heartbeat == 0 or (self.heartbeat_ns and self.now_ns >= self._next_heartbeat):
            # Execution's periodic position report: risk fails closed without execution state.
            self.execution.heartbeat("backtest heartbeat")
            self._next_heartbeat = self.now_ns + (self.heartbeat_ns or 1)
        self.execution.on_market(event)
        self._deliver_reports()
        self._apply_breach(self.risk.on_market(event, self.now_ns))
        for ready in self.order.push(event, self.now_ns):
            self._infer(ready)
        self._sample_equity(force=False)

    def finish(self) -> BacktestResult:
        for ready in self.order.drain():
            self._infer(ready)
        self._deliver_reports()
        self._sample_equity(force=True)
        res = self.result
        res.reports = self.emitter.reports
        res.final_positions = [position_to_pb(p) for p in self.execution.list_positions()]
        res.halted_at_end = self.risk.halted
        return res

    # -- the pieces the services run on the bus ----------------------------------------------------
    def _infer(self, event: market_pb2.MarketEvent) -> None:
        row = self.features.update(event)
        if row is None:
            return
        self.result.rows += 1
        predictor = self.models.predictors.get(row.symbol)
        if predictor is None:
            return
        signal = signal_for_row(row, predictor, self.weights, self.now_ns)
        self.result.signals += 1
        decision = self.risk.decide(signal, self.now_ns)
        self.result.decisions.append(decision)
        if decision.approved:
            self.execution.on_decision(decision)
            self._deliver_reports()

    def _deliver_reports(self) -> None:
        reports = self.emitter.reports
        while self._delivered < len(reports):
            report = reports[self._delivered]
            self._delivered += 1
            self._apply_breach(self.risk.on_report(report, self.now_ns))
            if report.HasField("fill"):
                self._sample_equity(force=True)
        # The lists are the backtest's record; the engine's copy would only double the memory.
        self.emitter.states.clear()

    def _apply_breach(self, breach: Breach | None) -> None:
        if breach is None:
            return
        self.result.halts.append(HaltRecord(self.now_ns, breach.limit, breach.describe()))
        # What the control topic carries to execution in the services.
        self.execution.on_halt(self.risk.halt, cause=f"auto-{breach.limit}", reason=self.risk.halt_reason)
        self._deliver_reports()

    def _sample_equity(self, force: bool) -> None:
        if not force and self.now_ns < self._next_equity:
            return
        self._next_equity = self.now_ns + self.equity_interval_ns
        positions = self.execution.positions.values()
        realized = float(sum((p.realized_pnl for p in positions), Decimal(0)))
        unrealized = float(sum((p.unrealized_pnl for p in positions), Decimal(0)))
        point = EquityPoint(self.now_ns, self.result.starting_equity + realized + unrealized, realized, unrealized)
        eq = self.result.equity
        if eq and eq[-1].time_ns == point.time_ns:
            eq[-1] = point
        else:
            eq.append(point)

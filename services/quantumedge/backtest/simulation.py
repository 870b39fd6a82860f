"""One backtest: market events through the same features, models, risk engine and execution engine as
the services, on the paper venue, with every clock driven by the events' own time.

The wiring mirrors the services on the bus: every market event reaches execution (paper fills, marks,
time stops); top of book and depth reach risk (freshness, marks: the topics risk subscribes to); every
event reaches inference (the service's own wiring, inference/app.py InferenceApp: market guard, reorder buffer,
features, drift guard, models), whose held events are released on the
market's clock as the service's ticker releases them on the wall clock. With a feed latency
(execution.paper_feed_latency_ms) the venue's book moves at the event's time but risk and inference see
the event that much later, and decide then; orders then take the order-entry latency to reach the book.
Risk is the service's own wiring (risk/app.py RiskApp: held signals, trading states, market guard, auto
halts); what it publishes goes to an outbox routed as the bus would: decisions and control records (halts,
trading states) to execution, every execution report back to risk; execution heartbeats. Decisions and
control records are signed and verified exactly as on the bus (an in-memory key pair per run, the services'
gates), so a backtest exercises the same admission path; a refusal shows in `refused`.

No Kafka, no gRPC, no files. What happens is handed to observers as it happens (decisions, reports,
equity points), so a run of any length keeps only counters in memory; `Recorded` keeps everything, for
tests and short runs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from google.protobuf.message import Message

from quantumedge.execution.app import ExecutionApp
from quantumedge.execution.convert import position_to_pb
from quantumedge.execution.engine import EngineConfig, ExecutionEngine, ListEmitter
from quantumedge.execution.venue_paper import paper_venue
from quantumedge.inference.app import InferenceApp, SignalSource
from quantumedge.inference.models import ModelSet
from quantumedge.risk.app import NoObserver, RiskApp
from quantumedge.risk.domain.limits import Breach
from quantumedge.settings import Settings
from quantumedge.shared import topics
from quantumedge.shared.market_rows import MarketRow
from quantumedge.shared.signing import Keyring, Verdict, ephemeral_keyring
from quantumedge.v1 import control_pb2, execution_pb2, market_pb2, risk_pb2, signal_pb2

Progress = Callable[[int], None]
MarketInput = market_pb2.MarketEvent | MarketRow
PROGRESS_EVERY = 4096  # events per progress callback
RISK_MARKET_KINDS = ("top_of_book", "depth")  # risk consumes ingest.book.v1 and ingest.depth.v1


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


class Observer(Protocol):
    def on_decision(self, decision: risk_pb2.RiskDecision) -> None: ...

    def on_report(self, report: execution_pb2.ExecutionReport) -> None: ...

    def on_equity(self, point: EquityPoint) -> None: ...


@dataclass
class Recorded:
    """An observer that keeps every decision, report and equity point."""

    decisions: list[risk_pb2.RiskDecision] = field(default_factory=list)
    reports: list[execution_pb2.ExecutionReport] = field(default_factory=list)
    equity: list[EquityPoint] = field(default_factory=list)

    def on_decision(self, decision: risk_pb2.RiskDecision) -> None:
        self.decisions.append(decision)

    def on_report(self, report: execution_pb2.ExecutionReport) -> None:
        self.reports.append(report)

    def on_equity(self, point: EquityPoint) -> None:
        self.equity.append(point)


@dataclass
class BacktestResult:
    symbols: list[str]
    starting_equity: float
    events: int = 0
    untimed_events: int = 0  # had no exchange time: stamped with their receive time
    rows: int = 0
    first_time_ns: int = 0
    last_time_ns: int = 0
    signals: int = 0
    halts: list[HaltRecord] = field(default_factory=list)
    final_positions: list[execution_pb2.Position] = field(default_factory=list)
    final_equity: EquityPoint | None = None
    halted_at_end: bool = False
    execution_halted_at_end: bool = False
    execution_status: execution_pb2.ExecutionServiceGetStatusResponse | None = None
    # Decisions / halt records the admission gates refused, by reason code (always empty unless a bug).
    refused: dict[str, int] = field(default_factory=dict)


class Backtest:
    """Feed events in time order with `run` (or `step` then `finish`). One instance is one run."""

    def __init__(
        self,
        settings: Settings,
        models: ModelSet,
        observers: Sequence[Observer] = (),
        equity_interval_ns: int = 1_000_000_000,
        signal_source: SignalSource | None = None,
        decide_from_ns: int = 0,
    ) -> None:
        self.settings = settings
        self.result_halts: list[HaltRecord] = []
        self.models = models
        self.observers = list(observers)
        self.symbols = list(dict.fromkeys(settings.symbols))
        # Inference's one wiring, as the service runs it (inference/app.py); its signals go to risk (_from_inference).
        self.inference = InferenceApp(settings.inference, self._from_inference, models, signal_source=signal_source)
        self.features = self.inference.features
        self.guards = self.inference.drift
        self.signal_source = signal_source
        # Rows before this warm the features and the drift guard up but are not decided.
        self.decide_from_ns = decide_from_ns
        self.emitter = ListEmitter()
        ex = settings.execution
        self.keyring = ephemeral_keyring("backtest")
        # Execution's one wiring, as the service runs it (execution/app.py): gates, market guard, halts, heartbeats.
        self.execution_app = _execution_app(settings, self.keyring, self.emitter, lambda: self.now_ns)
        self.execution = self.execution_app.engine
        # Risk's one wiring, as the service runs it (risk/app.py); what it publishes lands in this outbox and is
        # routed as the bus would (queued, so a publication never re-enters risk from inside risk).
        self._outbox: deque[tuple[str, str | None, Message]] = deque()
        self._ids = 0
        self.app = RiskApp(
            settings.risk, self.keyring, self._enqueue, _HaltRecorder(self.result_halts), new_id=self._next_id
        )
        self.risk = self.app.engine
        self._published = 0  # offsets of the records a bus would carry
        self.equity_interval_ns = equity_interval_ns
        self.now_ns = 0
        self._wanted = set(self.symbols)
        self._next_equity = 0
        self._last_equity: EquityPoint | None = None
        self.result = BacktestResult(self.symbols, float(ex.starting_equity), halts=self.result_halts)
        self.feed_latency_ns = int(ex.paper_feed_latency_ms * 1_000_000)
        # Events the venue has applied that the strategy has not seen yet: (when it sees them, event).
        self._in_feed: deque[tuple[int, market_pb2.MarketEvent]] = deque()

    # -- the loop ----------------------------------------------------------------------------------
    def run(self, events: Iterable[MarketInput], progress: Progress | None = None) -> BacktestResult:
        if progress is None:
            for event in events:
                self.step(event)
            return self.finish()
        pending = 0
        for event in events:
            self.step(event)
            pending += 1
            if pending == PROGRESS_EVERY:  # a rich progress update per event cost more than some engines
                progress(pending)
                pending = 0
        if pending:
            progress(pending)
        return self.finish()

    def step(self, event: MarketInput) -> None:
        """One market event: a MarketEvent, or a recording's MarketRow view (the same fields, no protobuf)."""
        if event.symbol not in self._wanted:
            return
        res = self.result
        if not event.exchange_time_ns:
            # A feed without event time (bookTicker): the system only knows when it arrived.
            if isinstance(event, MarketRow):
                event = event._replace(exchange_time_ns=event.receive_time_ns)  # a row view is immutable
            else:
                event.exchange_time_ns = event.receive_time_ns
            res.untimed_events += 1
        # What reached the strategy before this event happened is decided on before the venue moves.
        self._release_feed(event.exchange_time_ns, inclusive=False)
        if event.exchange_time_ns > self.now_ns:
            self.now_ns = event.exchange_time_ns
        res.events += 1
        res.first_time_ns = res.first_time_ns or self.now_ns
        res.last_time_ns = self.now_ns
        if res.events == 1:  # the service's start-up position report: risk fails closed without execution state
            self.execution_app.beat(self.now_ns, "backtest heartbeat")
        else:
            self.execution_app.tick(self.now_ns)
        if self.feed_latency_ns:
            self._execution_market(event)
            self._deliver_reports()
            self._in_feed.append((self.now_ns + self.feed_latency_ns, event))
        else:
            # Rows due at this event's time are decided on the market as it stood before it (rowclock.py).
            self._decide_due(event)
            self._execution_market(event)
            self._deliver_reports()
            self._risk_market(event)
        self._sample_equity(force=False)

    def _decide_due(self, event: market_pb2.MarketEvent) -> None:
        """Inference takes the event: the rows due by its time are decided, at self.now_ns."""
        problem = self.inference.on_market(event, self.now_ns)
        if problem is not None:  # dead-lettered on the bus: inference never takes it
            self._refused(f"inference:{problem.code}")
        self.inference.flush(self.now_ns)

    def _execution_market(self, event: market_pb2.MarketEvent) -> None:
        """The event as execution's market consumer receives it (every market topic)."""
        problem = self.execution_app.on_market(event)
        if problem is not None:  # dead-lettered on the bus: execution never takes it
            self._refused(problem.code)

    def _risk_market(self, event: market_pb2.MarketEvent) -> None:
        """The event as risk's market consumer receives it."""
        if event.WhichOneof("payload") not in RISK_MARKET_KINDS:
            return
        problem = self.app.admit_market(event)
        if problem is not None:  # dead-lettered on the bus: risk never takes it
            self._refused(problem.code)
            return
        self.app.publish_decided(self.app.on_market(event, self.now_ns), self.now_ns)
        self._route()

    def _release_feed(self, until_ns: int | None, inclusive: bool = True) -> None:
        """Hand the strategy the events its feed delivers by `until_ns` (all when None), each at its own time."""
        feed = self._in_feed
        while feed and (until_ns is None or feed[0][0] < until_ns or (inclusive and feed[0][0] == until_ns)):
            seen_ns, event = feed.popleft()
            self.now_ns = max(self.now_ns, seen_ns)
            # The venue's clock moves too: orders in flight arrive, and what is decided now leaves now.
            self.execution.on_clock(self.now_ns)
            self._deliver_reports()
            self._decide_due(event)
            self._risk_market(event)

    def finish(self) -> BacktestResult:
        self._release_feed(None)
        self.inference.drain()  # rows not yet due when the data ends are never decided
        self._deliver_reports()
        self._sample_equity(force=True)
        res = self.result
        res.rows = self.inference.rows
        res.final_positions = [position_to_pb(p) for p in self.execution.list_positions()]
        res.final_equity = self._last_equity
        res.halted_at_end = self.risk.halted
        res.execution_halted_at_end = self.execution.halted
        res.execution_status = self.execution.status()
        return res

    # -- the pieces the services run on the bus ----------------------------------------------------
    def _from_inference(self, topic: str, key: str | None, message: Message) -> None:
        """What inference published: a signal goes to risk as risk's consumer takes it (shadow signals: no reader)."""
        if topic != topics.SIGNALS or not isinstance(message, signal_pb2.Signal) or self.now_ns < self.decide_from_ns:
            return
        self.result.signals += 1
        for observer in self.observers:
            on_signal = getattr(observer, "on_signal", None)
            if on_signal is not None:
                on_signal(message)
        self.app.publish_decided(self.app.on_signal(message, self.now_ns), self.now_ns)
        self._route()

    def _enqueue(self, topic: str, key: str | None, message: Message) -> None:
        self._outbox.append((topic, key, message))

    def _next_id(self) -> str:
        self._ids += 1
        return f"backtest-{self._ids}"

    def _route(self) -> None:
        """What risk published, to execution as its consumers take it; execution's reports back to risk."""
        while self._outbox:
            topic, key, message = self._outbox.popleft()
            if topic == topics.DECISIONS and isinstance(message, risk_pb2.RiskDecision):
                self._to_execution(message)
            elif topic == topics.CONTROL and isinstance(message, control_pb2.ControlEvent):
                self._control_to_execution(key or "", message)
            self._deliver_reports()

    def _to_execution(self, decision: risk_pb2.RiskDecision) -> None:
        for observer in self.observers:
            observer.on_decision(decision)
        if decision.approved:  # a rejection trades nothing (the service only verifies its signature)
            verdict = self.execution_app.on_decision(decision, decision.symbol, self._position(), self.now_ns)
            self._count_refusal(verdict)

    def _control_to_execution(self, key: str, event: control_pb2.ControlEvent) -> None:
        """Execution's control consumer: halts and trading states, verified by its own gate."""
        self._count_refusal(self.execution_app.on_control(event, key, self._position()))

    def _position(self) -> tuple[int, int]:
        self._published += 1
        return (0, self._published)

    def _count_refusal(self, verdict: Verdict) -> None:
        if not verdict.ok:
            self._refused(verdict.code)

    def _refused(self, code: str) -> None:
        """What the bus would have dead-lettered, counted by reason code."""
        self.result.refused[code] = self.result.refused.get(code, 0) + 1

    def _deliver_reports(self) -> None:
        # Reports go to risk in the order execution made them; a breach may add more (a halt's cancels).
        reports = self.emitter.reports
        while reports:
            report = reports.pop(0)
            for observer in self.observers:
                observer.on_report(report)
            self.app.publish_decided(self.app.on_report(report, self.now_ns), self.now_ns)
            self._route()
            if report.HasField("fill"):
                self._sample_equity(force=True)
        self.emitter.states.clear()  # the compacted state topic has no reader in a backtest

    def _sample_equity(self, force: bool) -> None:
        if not force and self.now_ns < self._next_equity:
            return
        self._next_equity = self.now_ns + self.equity_interval_ns
        positions = self.execution.positions.values()
        realized = float(sum((p.realized_pnl for p in positions), Decimal(0)))
        unrealized = float(sum((p.unrealized_pnl for p in positions), Decimal(0)))
        point = EquityPoint(self.now_ns, self.result.starting_equity + realized + unrealized, realized, unrealized)
        self._last_equity = point
        for observer in self.observers:
            observer.on_equity(point)


def _execution_app(
    settings: Settings, keyring: Keyring, emitter: ListEmitter, clock: Callable[[], int]
) -> ExecutionApp:
    """The execution engine on the paper venue and the market's clock, in the service's wiring."""
    engine = ExecutionEngine(paper_venue(settings), emitter, EngineConfig.from_settings(settings), clock=clock)
    sig = settings.signing
    return ExecutionApp(
        engine,
        keyring,
        settings.execution,
        int(sig.max_decision_age_s * 1e9),
        int(sig.max_clock_ahead_s * 1e9),
        lambda _topic, key, report: emitter.report(key or "", report),  # observe mode's reports: to risk
    )


class _HaltRecorder(NoObserver):
    """The app's auto halts, as the result's halt records."""

    def __init__(self, halts: list[HaltRecord]) -> None:
        self.halts = halts

    def halted(self, breach: Breach, now_ns: int) -> None:
        self.halts.append(HaltRecord(now_ns, breach.limit, breach.describe()))

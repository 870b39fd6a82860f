"""`quantumedge up`: all four services in one process on the in-process bus.

Needs no Kafka, no Vault and no secrets: synthetic market data, the paper venue and the models
shipped in models/. A bounded run ends by itself once the replay is over and every consumer
group has caught up; Ctrl-C ends it early. Either way it prints what happened.

`--source binance` reads Binance's public market streams (no key; ends with Ctrl-C), `--source capture
--capture PATH` replays raw captures through the same parser and book sync; `--observe` runs execution
observe-only (execution/observe.py: nothing is sent to any venue, each approved decision is reported with
a hypothetical fill at the touch). At start a model report prints what will run (inference/model_report.py);
`--journal DIR` writes every signal, decision and execution report of the run as JSON lines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from quantumedge.runner import Running, serve_forever, start
from quantumedge.settings import Settings
from quantumedge.shared import topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.shared.config import SERVICE_NAMES, ConfigError
from quantumedge.shared.logs import get_logger
from quantumedge.shared.market_clock import MarketClock
from quantumedge.shared.process_signals import install_signal_handlers
from quantumedge.shared.service import ServiceBase
from quantumedge.v1 import execution_pb2, risk_pb2

log = get_logger(__name__)


@dataclass(frozen=True)
class UpOptions:
    """What `quantumedge up` runs: the market source, and whether execution only observes."""

    source: str = "synthetic"  # synthetic | binance | capture
    capture: str = ""
    observe: bool = False
    journal: str = ""
    # Where a lockstep run's market starts (tests: two runs of one seed share their timestamps); None = now.
    start_ns: int | None = None


def embedded_settings(settings: Settings, steps: int, options: UpOptions | None = None) -> Settings:
    """The embedded defaults: in-process bus, synthetic source, paper venue, no secrets, loopback only.

    With `--observe` execution's venue setting is kept as configured (it is never used: nothing is sent)."""
    options = options or UpOptions()
    ingest: dict[str, object] = {"source": options.source, "synthetic_steps": steps}
    if options.source == "capture":
        from quantumedge.ingest.capture import CaptureError, capture_files

        try:
            capture_files(options.capture)
        except CaptureError as exc:
            raise ConfigError(f"--source capture: {exc}") from None
        # Restamped so the first frame is "now": the staleness guards downstream compare with the wall clock.
        ingest.update(capture_path=options.capture, capture_restamp=True)
    elif options.capture:
        raise ConfigError("--capture PATH needs --source capture")
    # The accelerated synthetic run shares one market present across services (ingest/lockstep.py); a paced
    # run (synthetic_speed > 0) already has one, the wall clock, and Binance is real time.
    ingest["lockstep"] = options.source == "synthetic" and not settings.ingest.synthetic_speed
    execution = {"mode": "observe"} if options.observe else {"venue": "paper"}
    return settings.model_copy(
        update={
            "bus": "memory",
            "embedded": True,
            # A laptop run is reachable from this machine only (its changing calls have no token anyway).
            "grpc_host": "127.0.0.1",
            "ingest": settings.ingest.model_copy(update=ingest),
            "execution": settings.execution.model_copy(update=execution),
        }
    )


@dataclass
class Summary:
    ticks: int = 0
    signals: int = 0
    intents: int = 0
    rejections: int = 0
    orders: int = 0
    fills: int = 0
    dead_letters: int = 0
    # Observe-only: approved decisions reported with a hypothetical fill (never counted as fills or PnL).
    observed: int = 0
    realized_pnl: float = 0.0
    unrealized_pnl: float = 0.0
    fees: float = 0.0

    @property
    def pnl(self) -> float:
        return self.realized_pnl + self.unrealized_pnl


def summarize(bus: MemoryBus) -> Summary:
    """Count what crossed the bus: the same numbers whatever each service keeps internally."""
    s = Summary()
    s.ticks = sum(sum(bus.end_offsets(t)) for t in topics.MARKET)
    s.signals = sum(bus.end_offsets(topics.SIGNALS))
    s.dead_letters = sum(bus.end_offsets(topics.DLQ))
    for rec in bus.read_all(topics.DECISIONS):
        decision = risk_pb2.RiskDecision.FromString(rec.value)
        if decision.approved:
            s.intents += 1
        else:
            s.rejections += 1
    orders: set[str] = set()
    positions: dict[str, execution_pb2.Position] = {}
    for rec in bus.read_all(topics.REPORTS):
        report = execution_pb2.ExecutionReport.FromString(rec.value)
        if report.observed:
            s.observed += 1
            continue
        if report.order.client_order_id:
            orders.add(report.order.client_order_id)
        if report.HasField("fill"):
            s.fills += 1
        s.realized_pnl += report.realized_pnl_delta
        s.fees += report.fee_delta
        if report.position.symbol:
            positions[report.position.symbol] = report.position
    s.orders = len(orders)
    s.unrealized_pnl = sum(p.unrealized_pnl for p in positions.values())
    return s


def print_summary(summary: Summary, elapsed_s: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"QuantumEdge embedded run ({elapsed_s:.1f} s)")
    table.add_column("ticks in", justify="right")
    table.add_column("signals", justify="right")
    table.add_column("intents", justify="right")
    table.add_column("rejections", justify="right")
    table.add_column("orders", justify="right")
    table.add_column("fills", justify="right")
    table.add_column("PnL (quote)", justify="right")
    table.add_column("fees", justify="right")
    table.add_column("dead letters", justify="right")
    table.add_column("observed", justify="right")
    table.add_row(
        str(summary.ticks),
        str(summary.signals),
        str(summary.intents),
        str(summary.rejections),
        str(summary.orders),
        str(summary.fills),
        f"{summary.pnl:+.2f}",
        f"{summary.fees:.2f}",
        str(summary.dead_letters),
        str(summary.observed),
    )
    # Wide enough that column headers never wrap, whatever the terminal reports (CI has none).
    Console(width=160).print(table)


def _drained(running: Running, bus: MemoryBus, last: list[int]) -> bool:
    """The source is exhausted and no consumer group has anything left to read (twice in a row)."""
    ingest = running.services.get("ingest")
    if ingest is None or not getattr(ingest, "source_done", None) or not ingest.source_done.is_set():
        return False
    lag = bus.total_lag()
    last.append(lag)
    return len(last) >= 3 and last[-1] == last[-2] == last[-3] == 0


def market_clock_for(settings: Settings, start_ns: int | None = None) -> MarketClock | None:
    """The run's one clock, chosen here: the lockstep market clock for the accelerated synthetic run (every
    service's time comparisons then read market time), None (the wall clock) for paced, capture and live runs.
    `start_ns`: where the market (and the clock) starts; None = now."""
    if not settings.ingest.lockstep:
        return None
    return MarketClock(time.time_ns() if start_ns is None else start_ns)


def tick_wiring(clock: MarketClock | None) -> Callable[[str, ServiceBase], None] | None:
    """On a market clock, each service that offers `tick(now_ns)` (what it does because time passed) gets it
    called whenever lockstep moves the present, before that moment's market events are published
    (ingest/lockstep.py). The wall clock has no such moment: services keep their own tickers."""
    if clock is None:
        return None

    def wire(name: str, service: ServiceBase) -> None:
        tick = getattr(service, "tick", None)
        if callable(tick):
            clock.on_tick(tick)
            log.info("service ticks on the market clock", extra={"service": name})

    return wire


def _start(
    settings: Settings, bus: MemoryBus, clock: MarketClock | None = None, stop: threading.Event | None = None
) -> Running:
    from quantumedge.inference.models import ModelsUnavailableError

    try:
        return start(list(SERVICE_NAMES), settings, bus, clock, wire=tick_wiring(clock), stop_event=stop)
    except ModelsUnavailableError as exc:
        raise ConfigError(str(exc)) from None


def _print_model_report(running: Running, settings: Settings) -> None:
    from quantumedge.inference.model_report import print_model_report

    inference = running.services.get("inference")
    if inference is not None:
        mode, feed = settings.execution.mode, settings.ingest.source
        print_model_report(inference.models.status, mode, feed, inference.synthetic_allowed)


def run_up(
    settings: Settings,
    steps: int,
    handle_signals: bool = True,
    options: UpOptions | None = None,
    bus: MemoryBus | None = None,
) -> Summary:
    """Start the four services, run until drained or interrupted, stop them, return the summary.

    `bus`: the in-process bus to run on (tests read every topic of the run afterwards); None = a new one."""
    options = options or UpOptions()
    settings = embedded_settings(settings, steps, options)
    bus = bus or MemoryBus(partitions=settings.kafka.partitions, symbols=settings.symbols)
    began = time.monotonic()
    stop = threading.Event()
    if handle_signals:
        # Before the services start: a Ctrl-C while they start (or while the model report prints) is a clean
        # stop with the summary, not a KeyboardInterrupt in whichever thread it lands.
        install_signal_handlers(stop)
    running = _start(settings, bus, market_clock_for(settings, options.start_ns), stop)
    _print_model_report(running, settings)
    lags: list[int] = []
    try:
        serve_forever(running, until=lambda: _drained(running, bus, lags), check_every_s=0.2)
    finally:
        running.stop(grace_s=1.0)
        summary = summarize(bus)
        if options.journal:
            from quantumedge.shared.journal import write_journal

            written = write_journal(bus, Path(options.journal))
            log.info("journal written", extra={"folder": options.journal, **written})
    print_summary(summary, time.monotonic() - began)
    return summary

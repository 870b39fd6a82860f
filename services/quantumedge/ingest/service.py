"""The ingest service: a market source on the bus, an optional recorder, and quantumedge.v1.IngestService.

The configured source (Binance, replay or synthetic) runs in its own thread. Each event it emits
is published to its topic (ingest.trades.v1 / ingest.book.v1 / ingest.depth.v1, keyed by symbol;
a gap marker goes to all three so every consumer learns continuity broke), handed to the recorder
queue, and fanned out to gRPC Subscribe streams. Each publish runs inside a producer span, so the
trace of a tick starts here and its context rides in the record's headers.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from opentelemetry.trace import SpanKind

from quantumedge.ingest.source import Emit, MarketSource
from quantumedge.ingest.stats import StreamTable
from quantumedge.shared import topics
from quantumedge.shared.bus import Bus
from quantumedge.shared.config import ConfigError
from quantumedge.shared.grpc_server import ServiceBinding
from quantumedge.shared.logs import get_logger
from quantumedge.shared.market_clock import MarketClock
from quantumedge.shared.market_kinds import KIND_DEPTH, KIND_GAP, KIND_TOP_OF_BOOK, KIND_TRADE
from quantumedge.shared.service import ServiceBase
from quantumedge.shared.telemetry import meter, tracer
from quantumedge.v1 import ingest_pb2, ingest_pb2_grpc, market_pb2

if TYPE_CHECKING:
    from quantumedge.ingest.recorder import Recorder
    from quantumedge.settings import Settings  # the root the runner hands in; no run-time import

log = get_logger(__name__)
_tracer = tracer("ingest")
_events_counter = meter("ingest").create_counter("qe.ingest.events", description="market events published, by kind")

KINDS = (KIND_TRADE, KIND_TOP_OF_BOOK, KIND_DEPTH, KIND_GAP)
_TOPIC_OF = {KIND_TRADE: topics.TRADES, KIND_TOP_OF_BOOK: topics.BOOK, KIND_DEPTH: topics.DEPTH}
_CLOSED = object()


def recordings_dir(settings: Settings, configured: str) -> Path:
    return Path(configured) if configured else Path(settings.data_dir) / "recordings"


def build_source(settings: Settings, start_ns: int | None = None) -> MarketSource:
    """The source the settings ask for; imports lazily so `serve ingest` on replay never loads websockets.
    `start_ns`: where the synthetic market starts (a lockstep run's market clock); None = now."""
    ing = settings.ingest
    if ing.source == "binance":
        from quantumedge.ingest.binance import BinanceSource

        return BinanceSource(ing, list(settings.symbols))
    if ing.source == "replay":
        from quantumedge.ingest.replay import ReplaySource

        return ReplaySource(
            recordings_dir(settings, ing.replay_path),
            settings.symbols,
            speed=ing.replay_speed,
            restamp=ing.replay_restamp,
        )
    if ing.source == "capture":
        from quantumedge.ingest.capture import CaptureSource

        return CaptureSource(
            ing.capture_path,
            settings.symbols,
            speed=ing.capture_speed,
            restamp=ing.capture_restamp,
            trade_stream=ing.trade_stream,
            depth_levels=ing.depth_levels,
            max_buffered_diffs=ing.max_buffered_diffs,
        )
    if ing.source == "synthetic":
        from quantumedge.ingest.synthetic import SyntheticMarket

        # start_ns=None: the clock starts now, so downstream staleness guards see fresh data.
        market = SyntheticMarket(
            symbols=list(settings.symbols),
            seed=ing.synthetic_seed,
            start_ns=start_ns,
            max_steps=ing.synthetic_steps or None,
            edge_bps_per_s=ing.synthetic_edge_bps_per_s,
        )
        return _Paced(market, ing.synthetic_speed) if ing.synthetic_speed else market
    raise ValueError(f"unknown ingest source {ing.source!r}; expected binance, replay, capture or synthetic")


class _Paced:
    """A source whose run() takes a speed, run at a fixed one (the MarketSource run has no speed)."""

    def __init__(self, source: Any, speed: float) -> None:
        self._source = source
        self._speed = speed
        self.name = source.name

    def run(self, emit: Emit, stop: threading.Event) -> None:
        self._source.run(emit, stop, speed=self._speed)

    def stream_status(self) -> list[ingest_pb2.StreamStatus]:
        return self._source.stream_status()


def build_recorder(settings: Settings) -> Recorder:
    from quantumedge.ingest.recorder import Recorder  # here: pyarrow loads only when ingest records (cold start)

    ing = settings.ingest
    return Recorder(
        recordings_dir(settings, ing.record_dir),
        rotate_bytes=int(ing.record_rotate_mb * 1024 * 1024),
        batch_events=ing.record_batch_events,
        flush_s=ing.record_flush_s,
        queue_max=ing.record_queue_max,
        retention_max_age_s=ing.retention_max_age_h * 3600,
        retention_max_bytes=int(ing.retention_max_total_mb * 1024 * 1024),
    )


class _Subscriber:
    def __init__(self, symbol: str, kinds: frozenset[str], maxsize: int) -> None:
        self.symbol = symbol
        self.kinds = kinds
        self.queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.dropped = 0

    def offer(self, event: market_pb2.MarketEvent, kind: str) -> None:
        if event.symbol != self.symbol or (self.kinds and kind not in self.kinds):
            return
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1  # a slow watcher must never slow the feed

    def close(self) -> None:
        # Make room if needed: the end-of-stream marker must get through.
        while True:
            try:
                self.queue.put_nowait(_CLOSED)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self.queue.get_nowait()


class IngestService(ServiceBase):
    name = "ingest"

    def __init__(
        self, settings: Settings, bus: Bus, source: MarketSource | None = None, clock: MarketClock | None = None
    ) -> None:
        """`clock`: the run's market clock (embedded lockstep only); ingest is the one that moves it."""
        super().__init__(settings, bus)
        # On a market clock the synthetic market starts where the clock stands, so one clock start, one run.
        start_ns = clock() if clock is not None and clock() else None
        self.source: MarketSource = source if source is not None else build_source(settings, start_ns)
        if clock is not None and not settings.ingest.lockstep:
            raise ConfigError("a market clock is moved by lockstep only: set QE_INGEST__LOCKSTEP=true or inject none")
        if settings.ingest.lockstep:
            from quantumedge.ingest.lockstep import Lockstep

            self.source = Lockstep(self.source, bus, settings.ingest.lockstep_timeout_s, clock)
        self.recorder: Recorder | None = build_recorder(settings) if settings.ingest.record else None
        self.symbols = [s.upper() for s in settings.symbols]
        # Set once the source has returned (exhausted, stopped or failed): `up` ends a bounded run on it.
        self.source_done = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.stats = StreamTable()
        self.published = 0
        self.gaps = 0
        # Copy-on-write tuple: the feed iterates it without a lock.
        self._subscribers: tuple[_Subscriber, ...] = ()
        self._subs_lock = threading.Lock()
        self.servicer = IngestServicer(self)

    # -- lifecycle ---------------------------------------------------------------------------------
    def grpc_services(self) -> list[ServiceBinding]:
        return [(ingest_pb2_grpc.add_IngestServiceServicer_to_server, self.servicer, "quantumedge.v1.IngestService")]

    def start(self) -> None:
        if self.recorder is not None:
            self.recorder.start()
        self._thread = threading.Thread(target=self._run_source, name="ingest-source", daemon=True)
        self._thread.start()
        log.info("ingest started", extra={"source": self.source.name, "symbols": self.symbols})

    def _run_source(self) -> None:
        try:
            self.source.run(self._emit, self._stop)
        except BaseException as exc:
            self._error = exc
            log.exception("market source failed", extra={"source": self.source.name})
        finally:
            self.source_done.set()
            log.info("market source finished", extra={"source": self.source.name, "published": self.published})

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            if self._thread.is_alive():
                log.error("market source did not stop within 30 s")
        if self.recorder is not None:
            self.recorder.stop()
        for sub in self._subscribers:
            sub.close()
        self.bus.flush()

    def healthy(self) -> bool:
        return self._error is None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def status_line(self) -> dict[str, Any]:
        line: dict[str, Any] = {"source": self.source.name, "published": self.published, "gaps": self.gaps}
        if self.recorder is not None:
            line["recorded"] = self.recorder.stats.recorded
            line["record_dropped"] = self.recorder.stats.dropped
        return line

    # -- the hot path ------------------------------------------------------------------------------
    def _emit(self, event: market_pb2.MarketEvent) -> None:
        kind = event.WhichOneof("payload")
        if kind is None or not event.symbol:
            return  # sources never emit these; a guard so nothing invalid reaches Kafka
        with _tracer.start_as_current_span(
            "ingest publish",
            kind=SpanKind.PRODUCER,
            attributes={"qe.symbol": event.symbol, "qe.kind": kind, "qe.sequence": event.sequence},
        ):
            if kind == KIND_GAP:
                payload = event.SerializeToString()
                for topic in topics.MARKET:
                    self.bus.publish(topic, event.symbol, payload)
                self.gaps += 1
            else:
                self.bus.publish(_TOPIC_OF[kind], event.symbol, event)
                self.stats.get(event.symbol, kind).count_event(event.exchange_time_ns)
        self.published += 1
        _events_counter.add(1, {"kind": kind})
        if self.recorder is not None:
            self.recorder.record(event)
        for sub in self._subscribers:
            sub.offer(event, kind)

    # -- subscribers (gRPC) ------------------------------------------------------------------------
    def subscribe(self, symbol: str, kinds: frozenset[str]) -> _Subscriber:
        sub = _Subscriber(symbol, kinds, self.settings.ingest.subscribe_queue_max)
        with self._subs_lock:
            self._subscribers = (*self._subscribers, sub)
        return sub

    def unsubscribe(self, sub: _Subscriber) -> None:
        with self._subs_lock:
            self._subscribers = tuple(s for s in self._subscribers if s is not sub)

    def status(self) -> ingest_pb2.IngestServiceGetStatusResponse:
        running = self.running
        source_streams = {(s.symbol, s.stream): s for s in self.source.stream_status()}
        for counters in self.stats.all():
            status = source_streams.get((counters.symbol, counters.stream))
            if status is None:
                status = source_streams[(counters.symbol, counters.stream)] = ingest_pb2.StreamStatus(
                    symbol=counters.symbol, stream=counters.stream, connected=running
                )
            # Events are counted here, once, whatever the source: what was actually published.
            status.events = counters.events
            status.last_event_time_ns = counters.last_event_time_ns
            status.events_per_second = counters.meter.rate()
        return ingest_pb2.IngestServiceGetStatusResponse(
            source=self.source.name,
            streams=sorted(source_streams.values(), key=lambda s: (s.symbol, s.stream)),
            events_published=self.published,
            events_recorded=self.recorder.stats.recorded if self.recorder is not None else 0,
            running=running,
        )


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(self, service: IngestService) -> None:
        self.service = service

    def GetStatus(
        self, request: ingest_pb2.IngestServiceGetStatusRequest, context: grpc.ServicerContext
    ) -> ingest_pb2.IngestServiceGetStatusResponse:
        return self.service.status()

    def Subscribe(self, request: ingest_pb2.SubscribeRequest, context: grpc.ServicerContext):
        symbol = request.symbol.strip().upper()
        if not symbol:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "symbol is required (for example BTCUSDT)")
        if symbol not in self.service.symbols:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"symbol {symbol!r} is not ingested; configured symbols: {', '.join(self.service.symbols)}",
            )
        unknown = sorted(set(request.kinds) - set(KINDS))
        if unknown:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"kinds: unknown {', '.join(unknown)}; expected any of {', '.join(KINDS)}",
            )
        sub = self.service.subscribe(symbol, frozenset(request.kinds))
        # Cancellation (client gone, deadline, server stop) wakes the waiting loop at once.
        context.add_callback(sub.close)
        sent = 0
        try:
            while context.is_active():
                item = sub.queue.get()
                if item is _CLOSED:
                    break
                yield ingest_pb2.SubscribeResponse(event=item)
                sent += 1
                if request.max_events and sent >= request.max_events:
                    break
        finally:
            self.service.unsubscribe(sub)

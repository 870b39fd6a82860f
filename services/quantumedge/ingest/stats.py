"""Per-stream counters behind IngestService.GetStatus (written by one thread, read by gRPC threads)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from quantumedge.v1 import ingest_pb2

# StreamStatus fields this module can fill; out_of_order only once the schema carries it.
_HAS_OUT_OF_ORDER = "out_of_order" in ingest_pb2.StreamStatus.DESCRIPTOR.fields_by_name


class RateMeter:
    """Events per second over the last one to two windows: cheap enough to call per event."""

    def __init__(self, window_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window_s
        self._clock = clock
        now = clock()
        self._cur_start = now
        self._cur = 0
        self._prev_start = now
        self._prev = 0

    def _roll(self, now: float) -> None:
        if now - self._cur_start < self._window:
            return
        if now - self._cur_start < 2 * self._window:
            self._prev_start, self._prev = self._cur_start, self._cur
        else:  # a whole window passed without events
            self._prev_start, self._prev = now - self._window, 0
        self._cur_start, self._cur = now, 0

    def mark(self, n: int = 1) -> None:
        self._roll(self._clock())
        self._cur += n

    def rate(self) -> float:
        # Read-only, so a reader thread never races the writer's roll-over.
        now = self._clock()
        cur_start, cur, prev_start, prev = self._cur_start, self._cur, self._prev_start, self._prev
        age = now - cur_start
        if age >= 2 * self._window:
            return 0.0
        if age >= self._window:
            return cur / age
        span = now - prev_start
        return (prev + cur) / span if span > 0 else 0.0


@dataclass
class StreamCounters:
    symbol: str
    stream: str
    connected: bool = False
    events: int = 0
    last_event_time_ns: int = 0
    reconnects: int = 0
    gaps: int = 0
    malformed: int = 0
    out_of_order: int = 0
    book_depth_levels: int = 0
    meter: RateMeter = field(default_factory=RateMeter)

    def count_event(self, exchange_time_ns: int) -> None:
        self.events += 1
        self.last_event_time_ns = exchange_time_ns
        self.meter.mark()

    def to_proto(self) -> ingest_pb2.StreamStatus:
        status = ingest_pb2.StreamStatus(
            stream=self.stream,
            symbol=self.symbol,
            connected=self.connected,
            last_event_time_ns=self.last_event_time_ns,
            events_per_second=self.meter.rate(),
            events=self.events,
            reconnects=self.reconnects,
            gaps=self.gaps,
            book_depth_levels=self.book_depth_levels,
            malformed=self.malformed,
        )
        if _HAS_OUT_OF_ORDER:
            status.out_of_order = self.out_of_order
        return status


class StreamTable:
    """StreamCounters keyed by (symbol, stream), created on first use."""

    def __init__(self) -> None:
        self._streams: dict[tuple[str, str], StreamCounters] = {}

    def get(self, symbol: str, stream: str) -> StreamCounters:
        key = (symbol, stream)
        counters = self._streams.get(key)
        if counters is None:
            counters = self._streams[key] = StreamCounters(symbol, stream)
        return counters

    def all(self) -> list[StreamCounters]:
        return list(self._streams.values())

    def to_proto(self) -> list[ingest_pb2.StreamStatus]:
        return [c.to_proto() for c in self.all()]

"""What every market-data source (Binance, replay, synthetic) offers the ingest service."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from quantumedge.v1 import ingest_pb2, market_pb2

Emit = Callable[[market_pb2.MarketEvent], None]


@runtime_checkable
class MarketSource(Protocol):
    """A source of normalised MarketEvents.

    `run` blocks in the caller's thread until `stop` is set or the source is exhausted, calling
    `emit` for every valid event (never for malformed or out-of-order data). `stream_status` may be
    called from other threads at any time.
    """

    name: str

    def run(self, emit: Emit, stop: threading.Event) -> None: ...

    def stream_status(self) -> list[ingest_pb2.StreamStatus]: ...


class ReplayClock:
    """Paces a replay by its recorded times and maps them onto now when restamping.

    `speed`: 0 = as fast as possible, 1 = real time, N = N times real time. With `restamp`, `shift` maps the
    first recorded time onto the wall clock at start (keeping the spacing), so staleness guards downstream
    accept the data; without it `shift` is 0 and events keep their recorded times.
    """

    def __init__(self, speed: float, restamp: bool, clock_ns: Callable[[], int] = time.time_ns) -> None:
        if speed < 0:
            raise ValueError(f"replay speed must be >= 0, got {speed}")
        self.speed = speed
        self.restamp = restamp
        self._clock_ns = clock_ns
        self._start_ns = clock_ns()
        self._first_ns: int | None = None
        self.shift = 0

    def wait_for(self, recorded_ns: int, stop: threading.Event) -> bool:
        """Wait until the item recorded at `recorded_ns` is due; False when `stop` was set first."""
        if stop.is_set():
            return False
        if self._first_ns is None:
            self._first_ns = recorded_ns
            self.shift = self._start_ns - recorded_ns if self.restamp else 0
        if self.speed > 0:
            due_ns = self._start_ns + int((recorded_ns - self._first_ns) / self.speed)
            wait_s = (due_ns - self._clock_ns()) / 1e9
            if wait_s > 0 and stop.wait(wait_s):
                return False
        return True

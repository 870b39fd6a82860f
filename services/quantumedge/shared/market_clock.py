"""The lockstep market clock: the one present of the embedded accelerated run.

In lockstep (ingest/lockstep.py) the synthetic market runs as fast as the pipeline, tens of times faster than
the wall clock. Every domain time comparison (staleness, cooldowns, pending bounds, time stops, a decision's age)
must then read market time, or a 5 s cooldown covers minutes of market and two runs of one seed differ. This
clock is made once at wiring time (embedded.run_up), injected into all four services as their `clock`, and moved
by ingest only: after each step it reads the exchange time of the step it last published. Kafka, `serve` and
paced runs never make one and keep the wall clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

Tick = Callable[[int], None]


class MarketClock:
    """A monotonic nanosecond clock that stands still until ingest advances it (callable like time.time_ns)."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now_ns = int(start_ns)
        self._lock = threading.Lock()
        self._ticks: list[Tick] = []

    def on_tick(self, tick: Tick) -> None:
        """Register a service's `tick(now_ns)` (embedded.py, at wiring time): what it does because time passed
        (rows that became due, held signals that expired), done at once when the present moves."""
        self._ticks.append(tick)

    def tick(self, now_ns: int, settle: Callable[[], None] | None = None) -> int:
        """Move the present to now_ns and let every registered service act on it, synchronously and in
        registration order. `settle` (lockstep: wait for a quiet bus) runs after each: what one service's tick
        published is handled downstream before the next service's tick reads its own state."""
        now = self.advance(now_ns)
        for tick in self._ticks:
            tick(now)
            if settle is not None:
                settle()
        return now

    def __call__(self) -> int:
        return self._now_ns

    def advance(self, now_ns: int) -> int:
        """Move to now_ns (never back: a late event does not rewind the run's present); returns the time."""
        with self._lock:
            if now_ns > self._now_ns:
                self._now_ns = int(now_ns)
            return self._now_ns

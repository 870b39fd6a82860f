"""Lockstep: the embedded accelerated run's shared market present.

Replayed as fast as possible (synthetic_speed=0) on the in-process bus, the feed would publish the whole
market at once and every consumer would end up at its own market time (risk's book near the end while
inference's signals lag far behind). In lockstep the feed publishes one market step, then waits until the bus
is quiescent: every consumer group has committed everything published so far, so each hop downstream
(signals -> risk -> decisions -> execution -> reports) has handled the step before the next one comes. The run
stays as fast as the pipeline, never slower than that, and never paced to the wall clock.

Chosen at wiring time (ingest.lockstep, set by embedded_settings for the accelerated synthetic run only); Kafka
and paced runs never use it. The wait is bounded (ingest.lockstep_timeout_s): past it the feed logs which
groups are behind and goes on, so a stuck consumer slows the run down but never hangs it.

With a market clock (shared/market_clock.py, injected at wiring time) lockstep is also the run's present: before
a step's first event is published the clock ticks to that step's newest exchange time, and it stands there until
the step is quiescent, so every service handles every event of a step at one and the same "now". The tick runs
the services' `tick(now)` hooks (registered in embedded.py), waiting for a quiet bus after each, before the
step's events go out: what became due by time alone (inference's rows due at now) is published and handled downstream
on the previous step's market, never raced against the new step's books.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from quantumedge.ingest.source import Emit
from quantumedge.shared.config import ConfigError
from quantumedge.shared.logs import get_logger
from quantumedge.shared.market_clock import MarketClock
from quantumedge.v1 import ingest_pb2, market_pb2

log = get_logger(__name__)


class QuiescentBus(Protocol):
    def wait_quiescent(self, timeout_s: float) -> bool: ...

    def undelivered(self) -> dict[str, int]: ...


class LockstepError(ConfigError):
    """ingest.lockstep asked for where it cannot work (a bus that cannot tell quiescence, a source without steps)."""


class Lockstep:
    """A stepped source (SyntheticMarket) that waits for a quiescent bus after each step."""

    def __init__(self, source: Any, bus: Any, timeout_s: float, clock: MarketClock | None = None) -> None:
        if not callable(getattr(bus, "wait_quiescent", None)):
            raise LockstepError(
                f"ingest.lockstep needs the in-process bus (bus=memory), not {type(bus).__name__}; "
                "set QE_INGEST__LOCKSTEP=false"
            )
        if getattr(source, "name", "") != "synthetic":
            raise LockstepError(
                f"ingest.lockstep needs ingest.source=synthetic, not {getattr(source, 'name', '?')}; "
                "set QE_INGEST__LOCKSTEP=false"
            )
        self._source = source
        self._bus: QuiescentBus = bus
        self._timeout_s = timeout_s
        self._clock = clock
        if clock is not None:
            clock.advance(int(getattr(source, "start_ns", 0)))  # before the first step: the market's start
        self.name = source.name
        self.steps = 0
        self.timeouts = 0

    def run(self, emit: Emit, stop: threading.Event) -> None:
        self._source.run(emit, stop, after_step=self._after_step, before_step=self._before_step)

    def _before_step(self, batch: list[market_pb2.MarketEvent]) -> None:
        if self._clock is not None and batch:
            self._clock.tick(max(ev.exchange_time_ns for ev in batch), settle=self._settle)

    def _after_step(self) -> None:
        self.steps += 1
        self._settle()

    def _settle(self) -> None:
        """Wait for a quiet bus, bounded (see above)."""
        if self._bus.wait_quiescent(self._timeout_s):
            return
        self.timeouts += 1
        # Logged the first time and then every 100th: a consumer that never catches up must not flood the log.
        if self.timeouts == 1 or self.timeouts % 100 == 0:
            log.warning(
                "lockstep: consumers still behind after the bound; publishing the next step anyway",
                extra={
                    "step": self.steps,
                    "timeout_s": self._timeout_s,
                    "times": self.timeouts,
                    "behind": self._bus.undelivered(),
                },
            )

    def stream_status(self) -> list[ingest_pb2.StreamStatus]:
        return self._source.stream_status()

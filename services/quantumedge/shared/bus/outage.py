"""Whether the broker is down for this process: one shared state, fed by every bus operation that can tell.

A consumer loop whose flush or commit times out, and the runner's periodic probe, each report as a `source`;
the bus is down while any source is failing. The start and the end of an outage are logged once each (not
per retry) and exported as gauges, so an operator sees one outage, how long it lasted and how long ago.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from quantumedge.shared.logs import get_logger
from quantumedge.shared.observe import Gauges

log = get_logger(__name__)
# kafka-python logs every failed reconnect at error level; during a known outage that is one line per retry
# per client, so its logger is quietened until the outage ends (our start/end lines say what happened).
_client_log = logging.getLogger("kafka")

_gauges = Gauges("bus.outage")
_gauges.gauge(
    "qe.bus.down",
    lambda o: [(1.0 if o.down else 0.0, {})],
    description="1 while the Kafka broker does not answer this process, else 0",
)
_gauges.gauge(
    "qe.bus.outages",
    lambda o: [(float(o.outages), {})],
    description="broker outages this process has ridden out (or is riding out) since it started",
)
_gauges.gauge(
    "qe.bus.last_outage",
    lambda o: [(o.last_duration_s, {})],
    unit="s",
    description="how long the last finished broker outage lasted",
)


class Outage:
    """Thread-safe. `clock` is injectable (monotonic seconds) so the durations are testable."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._failing: dict[str, str] = {}
        self._started = 0.0
        self._client_level = logging.NOTSET
        self._up = threading.Event()
        self._up.set()
        self.outages = 0
        self.last_duration_s = float("nan")  # nan (left out of the gauge) until one outage has ended
        _gauges.add_owner(self)

    @property
    def down(self) -> bool:
        return not self._up.is_set()

    def failed(self, source: str, cause: BaseException | str) -> None:
        """`source` could not reach the broker; the first failing source starts an outage (logged once)."""
        with self._lock:
            starting = not self._failing
            self._failing[source] = str(cause)
            if not starting:
                return
            self._started = self._clock()
            self.outages += 1
            self._up.clear()
            self._client_level = _client_log.level
            _client_log.setLevel(logging.CRITICAL)
        log.warning("kafka broker unreachable: outage started", extra={"source": source, "cause": str(cause)})

    def ok(self, source: str) -> None:
        """`source` reached the broker again; the outage ends when no source is failing any more."""
        with self._lock:
            if self._failing.pop(source, None) is None or self._failing:
                return
            self.last_duration_s = self._clock() - self._started
            self._up.set()
            _client_log.setLevel(self._client_level)
        log.info("kafka broker answers again: outage ended", extra={"duration_s": round(self.last_duration_s, 3)})

    def wait_up(self, timeout_s: float) -> bool:
        """Block until no source is failing (True) or timeout_s passed (False)."""
        return self._up.wait(timeout_s)

"""Gauges read at collection time from whichever services are alive in this process.

An observable instrument is created once per process (a second one with the same name would be ignored by
the SDK), so each module keeps one `Gauges` and every service instance registers itself as an owner; the
callback reads the owners that still exist. Reads run on the scraping thread: `read` must be thread-safe.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation

from quantumedge.shared.logs import get_logger
from quantumedge.shared.telemetry import meter

log = get_logger(__name__)

Reading = Iterable[tuple[float, dict[str, Any]]]


class Gauges:
    def __init__(self, meter_name: str) -> None:
        self._meter = meter(meter_name)
        self._owners: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()

    def add_owner(self, owner: Any) -> None:
        with self._lock:
            self._owners.add(owner)

    def remove_owner(self, owner: Any) -> None:
        with self._lock:
            self._owners.discard(owner)

    def gauge(self, name: str, read: Callable[[Any], Reading], description: str = "", unit: str = "") -> None:
        """An observable gauge whose value(s) come from `read(owner)` for each live owner."""

        def callback(_options: CallbackOptions) -> list[Observation]:
            with self._lock:
                owners = list(self._owners)
            out: list[Observation] = []
            for owner in owners:
                try:
                    # A figure with nothing behind it yet (an -inf headroom) is left out, not exported as a lie.
                    out.extend(Observation(float(v), attrs) for v, attrs in read(owner) if math.isfinite(v))
                except Exception:  # a scrape must never break on one owner's bad moment
                    log.debug("gauge read failed", extra={"gauge": name}, exc_info=True)
            return out

        self._meter.create_observable_gauge(name, callbacks=[callback], description=description, unit=unit)

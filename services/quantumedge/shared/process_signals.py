"""A process's stop signals: SIGTERM (the platform) and SIGINT (Ctrl-C) ask for a graceful stop.

Apart from quantumedge.runner so that notify and the console, which run without the four services, use it
without importing every service through the runner.
"""

from __future__ import annotations

import signal
import threading

from quantumedge.shared.logs import get_logger

log = get_logger(__name__)


def install_signal_handlers(stop_event: threading.Event) -> None:
    """SIGTERM (the platform) and SIGINT (Ctrl-C) both ask for a graceful stop."""

    def _handler(signum: int, _frame: object) -> None:
        log.info("stop requested", extra={"signal": signal.Signals(signum).name})
        stop_event.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)


__all__ = ["install_signal_handlers"]

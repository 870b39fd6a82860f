"""The notifier: a bounded queue and a thread of its own, so trading never waits on a notification.

`notify()` never blocks: a full queue drops the message (counted). The sender thread applies a token
bucket over all messages (the rest are counted and announced once room returns), then tries each sink
with backoff, honouring the wait a server asks for. Every outcome is counted (qe.notify.messages).
"""

from __future__ import annotations

import contextlib
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from quantumedge.notify.events import Notification
from quantumedge.notify.settings import NotifySettings
from quantumedge.notify.sinks import RetryLaterError, SendFailedError
from quantumedge.shared.backoff import Backoff
from quantumedge.shared.logs import get_logger
from quantumedge.shared.telemetry import meter

log = get_logger(__name__)
_messages = meter("notify").create_counter("qe.notify.messages", description="notifications by sink and outcome")


class Sink(Protocol):
    name: str

    def send(self, text: str) -> None: ...


@dataclass
class TokenBucket:
    """`burst` tokens, refilled at per_minute / 60 per second, on an injected monotonic clock."""

    per_minute: float
    burst: int
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)
        self.stamp = self.clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.per_minute / 60.0)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Notifier:
    def __init__(self, settings: NotifySettings, sinks: Sequence[Sink], sleep: Callable[[float], bool] | None = None):
        self.settings = settings
        self.sinks = list(sinks)
        self.bucket = TokenBucket(settings.per_minute, settings.burst)
        self.counts: dict[str, int] = {}
        self._queue: queue.Queue[Notification | None] = queue.Queue(maxsize=settings.queue_max)
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._suppressed = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- the side trading calls: never blocks --------------------------------------------------------
    def notify(self, notification: Notification) -> bool:
        if not self.settings.wants(notification.kind):
            self._count("", "switched_off")
            return False
        try:
            self._queue.put_nowait(notification)
        except queue.Full:
            self._count("", "dropped")
            return False
        return True

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> Notifier:
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)  # wakes the thread
        if self._thread is not None:
            self._thread.join(timeout_s)

    def idle(self) -> bool:
        return self._queue.unfinished_tasks == 0

    # -- the sender thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._queue.get()
            try:
                if item is not None:
                    self._deliver(item)
            except Exception:  # the thread must survive any one message
                log.exception("notification failed")
            finally:
                self._queue.task_done()

    def _deliver(self, notification: Notification) -> None:
        if not self.bucket.take():
            self._suppressed += 1
            self._count("", "rate_limited")
            return
        text = notification.text
        if self._suppressed:
            text += f"\n({self._suppressed} more notifications were held back by the rate limit)"
            self._suppressed = 0
        for sink in self.sinks:
            self._send(sink, text, notification.kind)

    def _send(self, sink: Sink, text: str, kind: str) -> None:
        backoff = Backoff(self.settings.retry_base_s, self.settings.retry_cap_s, random.Random())
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                sink.send(text)
                self._count(sink.name, "sent")
                return
            except SendFailedError as exc:
                self._count(sink.name, "failed")
                log.warning("notification refused", extra={"sink": sink.name, "kind": kind, "error": str(exc)})
                return
            except RetryLaterError as exc:
                if attempt == self.settings.max_attempts:
                    break
                self._count(sink.name, "retried")
                wait = exc.after_s if exc.after_s is not None else backoff.next_delay()
                if self._sleep(min(wait, self.settings.retry_cap_s)):
                    return  # stopping
        self._count(sink.name, "failed")
        log.warning("notification not delivered", extra={"sink": sink.name, "kind": kind, "attempts": attempt})

    def _count(self, sink: str, outcome: str) -> None:
        with self._lock:
            key = f"{sink}:{outcome}" if sink else outcome
            self.counts[key] = self.counts.get(key, 0) + 1
        _messages.add(1, {"sink": sink or "none", "outcome": outcome})

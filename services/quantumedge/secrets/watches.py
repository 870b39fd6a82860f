"""Watched secrets of a SecretStore: who is called back when a secret's version changes, and how errors
reach them (once per new kind of failure, never on every poll).

The store owns the thread and the lock; this file owns the list and one poll over it. A callback that
raises is logged and never stops the poll or the store's thread.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from quantumedge.secrets.errors import SecretUnavailable
from quantumedge.secrets.masking import SecretData
from quantumedge.shared.logs import get_logger

log = get_logger(__name__)

WatchCallback = Callable[[SecretData], None]
ErrorCallback = Callable[[SecretUnavailable], None]


class _Owner(Protocol):
    def _remove_watch(self, w: Watch) -> None: ...


class _Reader(Protocol):
    failure: SecretUnavailable | None

    def version(self, path: str) -> int: ...

    def read(self, path: str) -> SecretData: ...


class _Counts(Protocol):
    watch_updates: int


@dataclass(eq=False)
class Watch:
    """A registered watch; `cancel()` stops it."""

    path: str
    callback: WatchCallback
    on_error: ErrorCallback | None
    version: int
    _store: _Owner = field(repr=False)
    _last_error_kind: str = ""

    def cancel(self) -> None:
        self._store._remove_watch(self)


def call_safely(fn: Callable[[Any], None], arg: Any) -> None:
    try:
        fn(arg)
    except Exception:
        log.exception("secret callback failed", extra={"callback": getattr(fn, "__qualname__", repr(fn))})


class WatchList:
    """The store's watches and when they are next polled (0: nothing watched yet)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.next_poll = 0.0
        self._watches: list[Watch] = []

    def __len__(self) -> int:
        return len(self._watches)

    def __iter__(self) -> Iterator[Watch]:
        return iter(list(self._watches))

    def add(self, w: Watch) -> None:
        self._watches.append(w)
        if not self.next_poll:
            self.next_poll = time.monotonic() + self.interval_s

    def remove(self, w: Watch) -> None:
        with contextlib.suppress(ValueError):
            self._watches.remove(w)

    def clear(self) -> None:
        self._watches.clear()

    def notify_failure(self, kind: str, reason: str) -> None:
        """The store stopped for good: tell each watcher once, as a failure of its own path."""
        for watch in list(self._watches):
            if watch.on_error and watch._last_error_kind != kind:
                watch._last_error_kind = kind
                call_safely(watch.on_error, SecretUnavailable(watch.path, reason, kind))

    def poll(self, reader: _Reader, stats: _Counts) -> int:
        """Check every watch once; returns how many callbacks ran."""
        updated = 0
        for w in list(self._watches):
            if reader.failure:
                break
            try:
                current = reader.version(w.path)
                if current == w.version:
                    w._last_error_kind = ""
                    continue
                data = reader.read(w.path)
            except SecretUnavailable as exc:
                if w.on_error and exc.kind != w._last_error_kind:
                    call_safely(w.on_error, exc)
                w._last_error_kind = exc.kind
                continue
            w.version = data.version
            w._last_error_kind = ""
            stats.watch_updates += 1
            updated += 1
            log.info("secret rotated", extra={"path": w.path, "version": data.version})
            call_safely(w.callback, data)
        return updated

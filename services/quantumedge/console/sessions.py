"""Sessions: the console's only state. A random id in an HttpOnly, SameSite=Strict cookie maps to the
operator's subject, their token (kept in memory, to call the services as them) and a CSRF token."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

COOKIE = "qe_session"


@dataclass
class Session:
    subject: str
    token: str
    csrf: str
    expires: float


class Sessions:
    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._lock = threading.Lock()
        self._by_id: dict[str, Session] = {}

    def create(self, subject: str, token: str) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._expire()
            self._by_id[sid] = Session(subject, token, secrets.token_urlsafe(32), self.clock() + self.ttl_s)
        return sid

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self._lock:
            self._expire()
            return self._by_id.get(sid)

    def drop(self, sid: str | None) -> None:
        with self._lock:
            self._by_id.pop(sid or "", None)

    def _expire(self) -> None:
        now = self.clock()
        for sid in [k for k, s in self._by_id.items() if s.expires <= now]:
            del self._by_id[sid]


def csrf_ok(session: Session, presented: str) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf, presented)


def cookie_header(sid: str, secure: bool, max_age_s: int) -> str:
    flags = f"{COOKIE}={sid}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}"
    return flags + ("; Secure" if secure else "")

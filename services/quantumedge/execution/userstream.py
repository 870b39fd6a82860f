"""Binance user data stream over the WebSocket API: `userDataStream.subscribe.signature`.

This is the documented current way (the REST listenKey endpoints are the legacy one); it works with
HMAC keys, unlike `session.logon` which needs Ed25519. Events arrive as
{"subscriptionId": N, "event": {...}}; connection events as {"event": {...}} with no subscription.

Connection hygiene, from Binance's WebSocket API docs:
- `serverShutdown` ("Please establish a new connection as soon as possible") and the 24-hour limit on a
  connection are handled make-before-break: a second connection is opened and subscribed while the
  first still delivers, and the first is closed `handover_overlap_s` later (so what it had already
  sent is still read). Both deliver during the overlap; an event seen twice is passed on once. No
  event is lost, so no reconciliation is needed.
- A watchdog sends the WebSocket API's `ping` request every `watchdog_interval_s`; a connection that
  stops answering (TCP and websocket pings may still look alive) is replaced the same way, and as its
  events may have been lost meanwhile, the owner is told to reconcile.
- A connection that drops is reconnected with backoff and jitter, and the owner reconciles: events
  sent while it was down are lost.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import connect

from quantumedge.execution.binance import Signer
from quantumedge.shared.backoff import Backoff
from quantumedge.shared.logs import get_logger

log = get_logger(__name__)
_POLL_S = 0.05
_DOWN = (ConnectionClosed, OSError, TimeoutError, InvalidHandshake, InvalidURI)


class SubscribeRefused(RuntimeError):  # noqa: N818 - a state, read as 'raise VenueRejected'
    pass


@dataclass
class _Connection:
    ws: Any
    opened: float
    subscription_id: int | None
    # Set by its reader thread: the venue said it is shutting down / the socket or the stream ended.
    shutdown: bool = False
    dead: bool = False
    # Watchdog: the id of the ping waiting for an answer, when it was sent (0 = none waiting), and when
    # the connection last proved it answers (opened, or a ping answered).
    ping_id: str = ""
    ping_sent: float = 0.0
    answered: float = 0.0
    tripped: bool = False
    reader: threading.Thread | None = field(default=None, repr=False)
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)


class _Seen:
    """The last `size` events, to pass an event that both connections of a handover deliver on once."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self.duplicates = 0

    def first(self, event: dict[str, Any]) -> bool:
        key = json.dumps(event, sort_keys=True, separators=(",", ":"))
        with self._lock:
            if key in self._keys:
                self.duplicates += 1
                return False
            self._keys[key] = None
            if len(self._keys) > self._size:
                self._keys.popitem(last=False)
            return True


class UserDataStream:
    def __init__(
        self,
        url: str,
        api_key: str,
        signer: Signer,
        server_time_ms: Callable[[], int],
        on_event: Callable[[dict[str, Any]], None],
        on_connected: Callable[[bool], None],
        recv_window_ms: int = 5000,
        backoff: Backoff | None = None,
        max_connection_age_s: float = 23.5 * 3600,
        watchdog_interval_s: float = 30.0,
        watchdog_timeout_s: float = 10.0,
        subscribe_timeout_s: float = 10.0,
        handover_overlap_s: float = 2.0,
    ) -> None:
        self.url = url
        self._api_key = api_key
        self._signer = signer
        self._server_time_ms = server_time_ms
        self._on_event = on_event
        self._on_connected = on_connected
        self._recv_window_ms = recv_window_ms
        self._backoff = backoff or Backoff(base_s=0.2, cap_s=10.0)
        self.max_connection_age_s = max_connection_age_s
        self.watchdog_interval_s = watchdog_interval_s
        self.watchdog_timeout_s = watchdog_timeout_s
        self.subscribe_timeout_s = subscribe_timeout_s
        self.handover_overlap_s = handover_overlap_s
        # Replaced connections still being read until their overlap ends: (connection, close at).
        self._retiring: list[tuple[_Connection, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ids = itertools.count(1)
        self._seen = _Seen(4096)
        self._active: _Connection | None = None
        self.connected = threading.Event()
        self.connections = 0
        self.handovers = 0
        self.watchdog_trips = 0
        self.subscription_id: int | None = None

    def set_credentials(self, api_key: str, signer: Signer) -> None:
        self._api_key = api_key
        self._signer = signer

    def start(self, wait_s: float = 10.0) -> bool:
        """Start the stream thread; wait up to wait_s for the first subscription (False if not yet)."""
        self._thread = threading.Thread(target=self._run, name="binance-user-stream", daemon=True)
        self._thread.start()
        return self.connected.wait(wait_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        active, self._active = self._active, None
        for conn in [c for c, _ in self._retiring] + ([active] if active is not None else []):
            self._close(conn)
        self._retiring = []

    @property
    def duplicates_dropped(self) -> int:
        """Events both connections of a handover delivered, passed on once."""
        return self._seen.duplicates

    # -- the supervisor -----------------------------------------------------------------------------
    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                self._retire_due()
                if self._active is None or self._active.dead:
                    attempt = self._reconnect(attempt)
                else:
                    self._look_after(self._active)
            except Exception:
                log.exception("user data stream supervisor failed; carrying on")
            if self._stop.wait(_POLL_S):
                break

    def _retire_due(self) -> None:
        now = time.monotonic()
        due = [c for c, at in self._retiring if at <= now or c.dead]
        self._retiring = [(c, at) for c, at in self._retiring if c not in due]
        for conn in due:
            self._close(conn)

    def _reconnect(self, attempt: int) -> int:
        """No usable connection: open one (with backoff); events of the gap are lost, so the owner
        reconciles after it. Returns the next backoff attempt."""
        if self._active is not None:
            log.warning("user data stream down; reconnecting")
            self._close(self._active)
            self._active = None
            self.connected.clear()
        try:
            conn = self._open()
        except (*_DOWN, SubscribeRefused) as exc:
            if not self._stop.is_set():
                log.warning("user data stream unavailable", extra={"error": f"{type(exc).__name__}: {exc}"})
            self._stop.wait(self._backoff.delay(attempt))
            return attempt + 1
        self._activate(conn, lossless=False)
        return 0

    def _look_after(self, conn: _Connection) -> None:
        """Replace the connection before it goes (serverShutdown, age) or once it stopped answering."""
        now = time.monotonic()
        reason = ""
        if conn.shutdown:
            reason = "serverShutdown"
        elif now - conn.opened >= self.max_connection_age_s:
            reason = "max connection age"
        elif conn.ping_sent and now - conn.ping_sent >= self.watchdog_timeout_s:
            reason = "watchdog: no answer to ping"
        elif not conn.ping_sent and now - max(conn.opened, conn.answered) >= self.watchdog_interval_s:
            self._ping(conn)
        if reason:
            self._handover(conn, reason)

    def _handover(self, old: _Connection, reason: str) -> None:
        """Make before break: subscribe a new connection, then close the old one."""
        quiet = reason.startswith("watchdog")
        if quiet and not old.tripped:
            self.watchdog_trips += 1
            old.tripped = True
        log.warning("user data stream: replacing the connection", extra={"reason": reason})
        try:
            new = self._open()
        except (*_DOWN, SubscribeRefused) as exc:
            log.warning("user data stream: new connection failed; keeping the old", extra={"error": str(exc)})
            self._stop.wait(self._backoff.delay(min(self.handovers, 6)))
            return
        self.handovers += 1
        self._activate(new, lossless=not quiet)
        # The old one is still read for the overlap: what it sent before the new subscription is not lost.
        self._retiring.append((old, time.monotonic() + (0.0 if quiet else self.handover_overlap_s)))

    def _activate(self, conn: _Connection, lossless: bool) -> None:
        self._active = conn
        self.connections += 1
        self.subscription_id = conn.subscription_id
        self.connected.set()
        log.info("user data stream subscribed", extra={"subscription_id": conn.subscription_id})
        # After a break (or a stalled connection) events may be lost: the owner reconciles.
        self._on_connected(self.connections > 1 and not lossless)

    # -- one connection -----------------------------------------------------------------------------
    def _open(self) -> _Connection:
        # One exit stack per connection: the connection outlives this call, and closes with _close.
        stack = contextlib.ExitStack()
        try:
            ws = stack.enter_context(connect(self.url, open_timeout=5, close_timeout=1))
            request = self._subscribe_request()
            ws.send(json.dumps(request))
            subscription = self._await_subscription(ws, request["id"])
        except BaseException:
            with contextlib.suppress(Exception):
                stack.close()
            raise
        conn = _Connection(ws, time.monotonic(), subscription, stack=stack)
        conn.reader = threading.Thread(target=self._pump, args=(conn,), name="binance-user-stream-reader", daemon=True)
        conn.reader.start()
        return conn

    def _subscribe_request(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "apiKey": self._api_key,
            "recvWindow": self._recv_window_ms,
            "timestamp": self._server_time_ms(),
        }
        # WebSocket API signing: parameters sorted by name, joined as a query string.
        payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
        params["signature"] = self._signer.sign(payload)
        return {"id": f"sub-{next(self._ids)}", "method": "userDataStream.subscribe.signature", "params": params}

    def _await_subscription(self, ws: Any, request_id: str) -> int | None:
        deadline = time.monotonic() + self.subscribe_timeout_s
        while time.monotonic() < deadline:
            message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") != request_id:
                continue
            if message.get("status") != 200:
                error = message.get("error") or {}
                raise SubscribeRefused(f"{error.get('code')} {error.get('msg')}")
            return (message.get("result") or {}).get("subscriptionId")
        raise TimeoutError("no answer to userDataStream.subscribe.signature")

    def _ping(self, conn: _Connection) -> None:
        conn.ping_id = f"ping-{next(self._ids)}"
        conn.ping_sent = time.monotonic()
        try:
            conn.ws.send(json.dumps({"id": conn.ping_id, "method": "ping"}))
        except _DOWN:
            conn.dead = True

    def _pump(self, conn: _Connection) -> None:
        try:
            while not self._stop.is_set() and not conn.dead:
                try:
                    raw = conn.ws.recv(timeout=0.5)
                except TimeoutError:
                    continue
                self._dispatch(conn, json.loads(raw))
        except (*_DOWN, ValueError) as exc:
            if not self._stop.is_set() and conn is self._active:
                log.warning("user data stream connection lost", extra={"error": f"{type(exc).__name__}: {exc}"})
        finally:
            conn.dead = True

    def _dispatch(self, conn: _Connection, message: dict[str, Any]) -> None:
        if "id" in message and message.get("id") == conn.ping_id:
            # Answered: the next ping waits an interval.
            conn.ping_id, conn.ping_sent, conn.answered = "", 0.0, time.monotonic()
            return
        event = message.get("event")
        if not isinstance(event, dict):
            return
        kind = event.get("e")
        if kind == "serverShutdown":
            log.warning("user data stream: the venue announced a server shutdown")
            conn.shutdown = True
            return
        if kind == "eventStreamTerminated":
            log.warning("user data stream terminated by the venue; resubscribing")
            conn.dead = True
            return
        if self._seen.first(event):
            self._on_event(event)

    def _close(self, conn: _Connection) -> None:
        conn.dead = True
        with contextlib.suppress(Exception):  # the socket may already be gone
            conn.stack.close()
        if conn.reader is not None and conn.reader is not threading.current_thread():
            conn.reader.join(2)

"""Binance user data stream over the WebSocket API: `userDataStream.subscribe.signature`.

This is the documented current way (the REST listenKey endpoints are the legacy one); it works with
HMAC keys, unlike `session.logon` which needs Ed25519. Events arrive as
{"subscriptionId": N, "event": {...}}. The stream reconnects with backoff and jitter and tells its
owner after every (re)connection, because events sent while it was down are lost: the owner then
reconciles open orders with REST queries.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import connect

from quantumedge.execution.binance import Signer
from quantumedge.shared.backoff import Backoff
from quantumedge.shared.logs import get_logger

log = get_logger(__name__)


class SubscribeRefused(RuntimeError):  # noqa: N818 - a state, read as 'raise VenueRejected'
    pass


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
    ) -> None:
        self.url = url
        self._api_key = api_key
        self._signer = signer
        self._server_time_ms = server_time_ms
        self._on_event = on_event
        self._on_connected = on_connected
        self._recv_window_ms = recv_window_ms
        self._backoff = backoff or Backoff(base_s=0.2, cap_s=10.0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ids = itertools.count(1)
        self._ws: Any = None
        self.connected = threading.Event()
        self.connections = 0
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
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):  # the socket may already be gone
                ws.close()
        if self._thread is not None:
            self._thread.join(5)

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

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                with connect(self.url, open_timeout=5, close_timeout=1) as ws:
                    self._ws = ws
                    request = self._subscribe_request()
                    ws.send(json.dumps(request))
                    self._await_subscription(ws, request["id"])
                    attempt = 0
                    self.connections += 1
                    self.connected.set()
                    log.info("user data stream subscribed", extra={"subscription_id": self.subscription_id})
                    self._on_connected(self.connections > 1)
                    self._pump(ws)
            except (ConnectionClosed, OSError, TimeoutError, InvalidHandshake, InvalidURI, SubscribeRefused) as exc:
                if not self._stop.is_set():
                    log.warning("user data stream down", extra={"error": f"{type(exc).__name__}: {exc}"})
            except Exception:
                log.exception("user data stream handler failed; reconnecting")
            finally:
                self._ws = None
                self.connected.clear()
            if self._stop.wait(self._backoff.delay(attempt)):
                break
            attempt += 1

    def _await_subscription(self, ws: Any, request_id: str) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") != request_id:
                continue
            if message.get("status") != 200:
                error = message.get("error") or {}
                raise SubscribeRefused(f"{error.get('code')} {error.get('msg')}")
            self.subscription_id = (message.get("result") or {}).get("subscriptionId")
            return
        raise TimeoutError("no answer to userDataStream.subscribe.signature")

    def _pump(self, ws: Any) -> None:
        while not self._stop.is_set():
            try:
                raw = ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            message = json.loads(raw)
            event = message.get("event")
            if not isinstance(event, dict):
                continue
            if event.get("e") == "eventStreamTerminated":
                log.warning("user data stream terminated by the venue; resubscribing")
                return
            self._on_event(event)

"""Local servers that speak what the notifier talks to, as their documentation says.

- Slack incoming webhooks: POST JSON {"text": ...}; 200 with body "ok"; 400 "invalid_payload" without text;
  the peer can also answer 500 (failing) or hold every request until released (hanging).
- Telegram Bot API sendMessage: POST /bot<token>/sendMessage with JSON {chat_id, text}; replies
  {"ok": true, "result": Message}, or {"ok": false, "error_code", "description"} (401 bad token,
  400 empty text), and 429 with "parameters": {"retry_after": N} when flooded.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Peer:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.requests = 0
        self._lock = threading.Lock()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                with peer._lock:
                    peer.requests += 1
                status, body, ctype = peer.answer(self.path, raw)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> _Peer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, raw: bytes) -> tuple[int, Any, str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def texts(self) -> list[str]:
        with self._lock:
            return [m["text"] for m in self.received]


class WebhookPeer(_Peer):
    def __init__(self, mode: str = "ok") -> None:
        super().__init__()
        self.mode = mode  # ok | failing | hanging
        self.release = threading.Event()
        self.holding = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/T000/B000/hook"

    def answer(self, path: str, raw: bytes) -> tuple[int, Any, str]:
        if self.mode == "hanging":
            self.holding.set()
            self.release.wait(60)
        if self.mode == "failing":
            return 500, b"internal_error", "text/plain"
        try:
            payload = json.loads(raw)
        except ValueError:
            return 400, b"invalid_payload", "text/plain"
        if not isinstance(payload, dict) or not payload.get("text"):
            return 400, b"no_text", "text/plain"
        with self._lock:
            self.received.append(payload)
        return 200, b"ok", "text/plain"


class TelegramPeer(_Peer):
    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.flood_next = 0
        self.retry_after = 1
        self._message_id = 0

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, path: str, raw: bytes) -> tuple[int, Any, str]:
        ctype = "application/json"
        if path != f"/bot{self.token}/sendMessage":
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}, ctype
        if self.flood_next > 0:
            self.flood_next -= 1
            return (
                429,
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {self.retry_after}",
                    "parameters": {"retry_after": self.retry_after},
                },
                ctype,
            )
        payload = json.loads(raw or b"{}")
        if not payload.get("text"):
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}, ctype
        if not payload.get("chat_id"):
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}, ctype
        with self._lock:
            self._message_id += 1
            self.received.append(payload)
            message_id = self._message_id
        result = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": payload["chat_id"], "type": "private"},
            "text": payload["text"],
        }
        return 200, {"ok": True, "result": result}, ctype

"""A local server that speaks the OpenAI chat-completions protocol, as its API reference documents it.

POST /v1/chat/completions with a JSON body {model, messages: [{role, content}], ...} and
`Authorization: Bearer <key>`. Answers:
- 200 {"id", "object": "chat.completion", "created", "model", "choices": [{"index", "message": {"role":
  "assistant", "content"}, "finish_reason"}], "usage": {"prompt_tokens", "completion_tokens", "total_tokens"}};
- 401 {"error": {"message", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}} for a
  missing or wrong key; 400 (invalid_request_error) for a body without model or messages;
- 429 {"error": {..., "type": "requests", "code": "rate_limit_exceeded"}} with a Retry-After header;
- 500 {"error": {..., "type": "server_error"}}.
`mode` picks the behaviour: a verdict (allow / deny / reduce), "hang" (answer only after `hang_s`), "malformed"
(content that is not JSON), "bad_schema" (JSON that breaks the verdict schema), "rate_limited", "failing".
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VERDICTS = {
    "allow": {"verdict": "allow", "size_factor": 1.0, "reason": "context unremarkable"},
    "deny": {"verdict": "deny", "reason": "drawdown close to its limit"},
    "reduce": {"verdict": "reduce", "size_factor": 0.5, "reason": "spread wide for the size"},
}


def _error(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


class ChatCompletionsPeer:
    def __init__(self, api_key: str, mode: str = "allow", hang_s: float = 5.0, retry_after_s: int = 7) -> None:
        self.api_key = api_key
        self.mode = mode
        self.hang_s = hang_s
        self.retry_after_s = retry_after_s
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body in one write: separate small writes meet Nagle and delayed ACKs (40 ms a call).
            wbufsize = 1 << 16

            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, body, headers = peer.answer(self.path, self.headers.get("Authorization", ""), raw)
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for name, value in {"Content-Type": "application/json", **headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (its timeout): nothing to answer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ChatCompletionsPeer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, authorization: str, raw: bytes) -> tuple[int, Any, dict[str, str]]:
        if path != "/v1/chat/completions":
            return 404, _error(f"Unknown request URL: POST {path}", "invalid_request_error", "unknown_url"), {}
        if authorization != f"Bearer {self.api_key}":
            return 401, _error("Incorrect API key provided", "invalid_request_error", "invalid_api_key"), {}
        try:
            body = json.loads(raw)
            messages = body["messages"]
            model = body["model"]
            assert isinstance(messages, list) and all({"role", "content"} <= set(m) for m in messages)
        except (ValueError, KeyError, TypeError, AssertionError):
            return 400, _error("'messages' and 'model' are required", "invalid_request_error", None), {}
        with self._lock:
            self.requests.append(body)
        mode = self.mode
        if mode == "hang":
            self._release.wait(self.hang_s)
            mode = "allow"
        if mode == "rate_limited":
            message = "Rate limit reached for requests. Please try again later."
            return 429, _error(message, "requests", "rate_limit_exceeded"), {"Retry-After": str(self.retry_after_s)}
        if mode == "failing":
            return 500, _error("The server had an error while processing your request.", "server_error", None), {}
        content = {"malformed": "I think you should buy.", "bad_schema": json.dumps({"verdict": "maybe"})}.get(
            mode, json.dumps(VERDICTS.get(mode, VERDICTS["allow"]))
        )
        prompt_tokens = sum(len(str(m["content"]).split()) for m in messages)
        completion_tokens = len(content.split())
        return (
            200,
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
            {},
        )

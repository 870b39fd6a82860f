"""Prove in the image build that the slimmed openai client still does what the risk moderator asks of it.

    /opt/venv/bin/python openai_probe.py

The moderator (risk/moderator_client.py) turns any unexpected exception into a "malformed" outcome, so a cut
that broke a lazy import inside openai would not crash anything: it would silently disable the moderator.
This script makes the moderator's call (chat.completions.create with a JSON response format) against a local
HTTP server on 127.0.0.1 answering 200, 429 and 500, and once against a closed port, and exits non-zero
unless each ends the way the openai client documents (a parsed completion, RateLimitError, APIStatusError,
APIConnectionError).
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

COMPLETION = {
    "id": "probe",
    "object": "chat.completion",
    "created": 1,
    "model": "probe",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": '{"ok":1}'}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}
STATUS = {"ok": 200, "limited": 429, "failed": 500}


class Answer(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        code = STATUS[self.path.split("/")[1]]
        body = json.dumps(COMPLETION if code == 200 else {"error": {"message": "probe"}}).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def call(openai: object, base_url: str) -> object:
    client = openai.OpenAI(api_key="probe", base_url=base_url, timeout=5, max_retries=0)  # type: ignore[attr-defined]
    return client.chat.completions.create(
        model="probe",
        messages=[{"role": "user", "content": "{}"}],
        temperature=0,
        max_tokens=8,
        response_format={"type": "json_object"},
    )


def main() -> int:
    import openai

    server = HTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    expected = {"limited": openai.RateLimitError, "failed": openai.APIStatusError}
    try:
        answer = call(openai, f"{base}/ok/v1")
        if answer.choices[0].message.content != '{"ok":1}' or answer.usage.prompt_tokens != 3:
            print(f"openai probe: unexpected completion {answer!r}")
            return 1
        for path, error in [*expected.items(), ("closed", openai.APIConnectionError)]:
            url = "http://127.0.0.1:1/v1" if path == "closed" else f"{base}/{path}/v1"
            try:
                call(openai, url)
            except error:
                continue
            print(f"openai probe: {path} did not raise {error.__name__}")
            return 1
    finally:
        server.shutdown()
    print("openai probe: chat.completions 200/429/500/refused as documented")
    return 0


if __name__ == "__main__":
    sys.exit(main())

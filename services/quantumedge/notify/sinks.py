"""Where notifications go: Slack-compatible webhooks and Telegram's Bot API (sendMessage).

A send either succeeds, or raises RetryLaterError (with the wait the server asked for, if any) or SendFailedError.
URLs and the bot token are secrets: never logged (errors name the sink, not its address).
"""

from __future__ import annotations

from dataclasses import dataclass

import requests


class SendFailedError(Exception):
    """A send that should not be tried again (bad token, bad request)."""


class RetryLaterError(Exception):
    """A send worth trying again; `after_s` is what the server asked for (Telegram's retry_after)."""

    def __init__(self, reason: str, after_s: float | None = None) -> None:
        super().__init__(reason)
        self.after_s = after_s


def _post(session: requests.Session, url: str, payload: dict, timeout_s: float) -> requests.Response:
    try:
        return session.post(url, json=payload, timeout=timeout_s)
    except requests.RequestException as exc:
        raise RetryLaterError(f"{type(exc).__name__}") from None


@dataclass
class WebhookSink:
    """Slack incoming-webhook JSON: {"text": ...}; any 2xx is delivered."""

    url: str
    name: str = "webhook"
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        self._session = requests.Session()

    def send(self, text: str) -> None:
        resp = _post(self._session, self.url, {"text": text}, self.timeout_s)
        if resp.status_code == 429 or resp.status_code >= 500:
            raise RetryLaterError(f"HTTP {resp.status_code}", _retry_after(resp.headers.get("RetryLaterError-After")))
        if resp.status_code >= 300:
            raise SendFailedError(f"HTTP {resp.status_code}")


@dataclass
class TelegramSink:
    """POST {api}/bot<token>/sendMessage {"chat_id", "text"}; the reply is {"ok": bool, ...}.

    A 429 reply carries parameters.retry_after (seconds), which is honoured."""

    api_url: str
    token: str
    chat_id: str
    name: str = "telegram"
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        self._session = requests.Session()

    def send(self, text: str) -> None:
        url = f"{self.api_url.rstrip('/')}/bot{self.token}/sendMessage"
        resp = _post(self._session, url, {"chat_id": self.chat_id, "text": text}, self.timeout_s)
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code < 300 and body.get("ok"):
            return
        code = body.get("error_code", resp.status_code)
        description = str(body.get("description", ""))[:200]
        if code == 429:
            after = (body.get("parameters") or {}).get("retry_after")
            raise RetryLaterError(f"429 {description}", float(after) if isinstance(after, int | float) else None)
        if resp.status_code >= 500:
            raise RetryLaterError(f"HTTP {resp.status_code}")
        raise SendFailedError(f"{code} {description}")


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None

"""JSON logs on stderr, one object per line, with every registered secret masked.

Masking is a safety net, not the policy: secrets are never passed to a logger on purpose,
but if one slips into a message, an argument, an exception or an `extra` field, it is
replaced before the record is formatted.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any

MASK = "***"
_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_configured = False
# Attributes every LogRecord has; anything else came in through `extra=` and is emitted as a field.
_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def register_secret(value: str | bytes | None) -> None:
    """Mask this value in every later log line. Short values are ignored to avoid masking noise."""
    if value is None:
        return
    text = value.decode(errors="ignore") if isinstance(value, bytes) else str(value)
    if len(text) < 6:
        return
    with _secrets_lock:
        _secrets.add(text)


def mask(text: str) -> str:
    """Replace every registered secret in text."""
    if not _secrets:
        return text
    with _secrets_lock:
        values = sorted(_secrets, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, extras, exception."""

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.service:
            payload["service"] = self.service
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return mask(json.dumps(payload, default=str))


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of the record, so a redirected stderr (a test's capture,
    a tool that swaps it) is followed instead of writing to a stream that may since have been closed."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def setup_logging(level: str = "INFO", service: str = "") -> None:
    """Install the JSON handler on the root logger (idempotent; later calls only change level/service)."""
    global _configured
    root = logging.getLogger()
    root.setLevel(level.upper())
    if _configured:
        for handler in root.handlers:
            if isinstance(handler.formatter, JsonFormatter) and service:
                handler.formatter.service = service
        return
    handler = _CurrentStderrHandler()
    handler.setFormatter(JsonFormatter(service))
    root.handlers[:] = [handler]
    # Client libraries are chatty at INFO about every connection; their warnings still show.
    for noisy in ("kafka", "hvac", "urllib3", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True
    # Imported here: the secrets package imports this module. Masks every value Vault handed out.
    from quantumedge.secrets.masking import install_masking_filter

    install_masking_filter(root)


def get_logger(name: str) -> logging.Logger:
    """A stdlib logger; the JSON handler is installed by setup_logging at process start."""
    return logging.getLogger(name)

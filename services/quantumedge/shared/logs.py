"""JSON logs on stderr, one object per line, with every registered secret masked before anything is serialised.

Masking is a safety net, not the policy: secrets are never passed to a logger on purpose, but if one slips
into a message, an argument, an `extra` field (however deeply nested), an exception's text or traceback, or
an uncaught exception of any thread, it is replaced by `***` while the values are still plain Python strings.
Masking the JSON text afterwards would miss a secret holding `"` or `\\` (encoded as `\\"`, `\\\\`).

This module holds the one registry of secret values; quantumedge.secrets registers what Vault hands out
(its SecretData lives there) and imports this module, never the other way round. Telemetry masks span
attributes and events with the same `mask_value` before export.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from types import TracebackType
from typing import Any

MASK = "***"
_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_by_length: tuple[str, ...] = ()  # the registry, longest first; replaced whole on each registration
_configured = False
_MAX_DEPTH = 8  # nested extras deeper than this are stringified (and masked) whole
# Attributes every LogRecord has; anything else came in through `extra=` and is emitted as a field.
_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_UNCAUGHT = "quantumedge.uncaught"


def register_secret(value: str | bytes | None) -> None:
    """Mask this value in every later log line and span. Short values are ignored to avoid masking noise.

    Its escaped forms (JSON, Python repr) are registered too, so a secret inside text that something already
    serialised (a JSON body in an extra, a repr in an exception message) is caught as well."""
    if value is None:
        return
    text = value.decode(errors="ignore") if isinstance(value, bytes) else str(value)
    if len(text) < 6:
        return
    global _by_length
    forms = {text, json.dumps(text)[1:-1], repr(text)[1:-1]}
    with _secrets_lock:
        if forms <= _secrets:
            return
        _secrets.update(forms)
        _by_length = tuple(sorted(_secrets, key=len, reverse=True))


def mask(text: str) -> str:
    """Replace every registered secret in text (longest first, so a secret containing another goes whole)."""
    if not text:
        return text
    for value in _by_length:
        if value in text:
            text = text.replace(value, MASK)
    return text


def mask_value(value: Any, _depth: int = 0) -> Any:
    """A masked copy of a value about to be logged or exported: strings masked, containers walked (keys too),
    numbers/bools/None kept, anything else turned into its masked str(). The caller's objects are untouched."""
    if not _by_length:
        return value  # nothing registered: nothing to mask (json.dumps' default=str renders the rest)
    kind = type(value)
    if kind is str:
        return mask(value)
    if value is None or kind in (bool, int, float):
        return value
    if kind is dict and _depth < _MAX_DEPTH:
        return {mask_value(k, _depth + 1): mask_value(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, bytes | bytearray):
        return mask(bytes(value).decode(errors="replace"))
    if _depth >= _MAX_DEPTH:
        return mask(_safe_str(value))
    if isinstance(value, Mapping):
        return {mask_value(k, _depth + 1): mask_value(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [mask_value(v, _depth + 1) for v in value]
    return mask(_safe_str(value))


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # a broken __str__ must not lose the record
        return f"<unprintable {type(value).__name__}>"


def _format_exception(exc_info: Any) -> str:
    return mask(logging.Formatter().formatException(exc_info))


class SecretMaskingFilter(logging.Filter):
    """Masks a record in place before any formatter sees it: message and args, extras (nested), exception
    text and traceback, stack info. For every handler (ours, pytest's caplog, a plain StreamHandler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the record; mask what we have
            message = _safe_str(record.msg)
        record.msg = mask(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = _format_exception(record.exc_info)
        if record.exc_text:
            # Formatters print exc_text when set (the traceback is kept, masked); exc_info is dropped so no
            # formatter can render the exception again from the live object, unmasked.
            record.exc_text = mask(record.exc_text)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                record.__dict__[key] = mask_value(value)
        record._qe_masked = True  # the JSON formatter need not walk the extras again
        return True


_FILTER = SecretMaskingFilter()


def install_masking_filter(logger: logging.Logger | None = None) -> SecretMaskingFilter:
    """Attach the filter to every handler of `logger` (default: root). Handler filters see records from all
    child loggers, logger filters would not; call again after adding handlers. Idempotent."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    return _FILTER


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, extras, exception. Every value is masked
    before json.dumps runs."""

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception:
            message = _safe_str(record.msg)
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask(message),
        }
        if self.service:
            payload["service"] = self.service
        masked = getattr(record, "_qe_masked", False)
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key if masked else mask(key)] = value if masked else mask_value(value)
        if record.exc_text:
            payload["exc"] = mask(record.exc_text)
        elif record.exc_info:
            payload["exc"] = _format_exception(record.exc_info)
        if record.stack_info:
            payload["stack"] = mask(record.stack_info)
        return json.dumps(payload, default=lambda o: mask(_safe_str(o)))


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


# ---- uncaught exceptions ---------------------------------------------------------------------------------
# Python's default hooks print tracebacks straight to stderr, past every handler and filter: a secret in an
# exception raised by a thread (or the main thread, or a __del__) would print in clear. These log instead.


def _log_uncaught(message: str, exc_info: tuple[type[BaseException], BaseException, TracebackType | None]) -> None:
    try:
        logging.getLogger(_UNCAUGHT).critical(message, exc_info=exc_info)
    except Exception:  # logging itself broken: still never print the secret
        text = "".join(traceback.format_exception(*exc_info))
        print(mask(f"{message}\n{text}"), file=sys.__stderr__)


def _sys_excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    _log_uncaught("uncaught exception; the process exits", (exc_type, exc, tb))


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:  # the default hook ignores SystemExit too
        return
    name = args.thread.name if args.thread is not None else "?"
    _log_uncaught(f"uncaught exception in thread {mask(name)}", (args.exc_type, args.exc_value, args.exc_traceback))


def _unraisable_hook(args: Any) -> None:
    if args.exc_value is None:
        return
    try:
        where = repr(args.object)[:200]
    except Exception:
        where = type(args.object).__name__
    message = mask(f"{args.err_msg or 'Exception ignored in'}: {where}")
    _log_uncaught(message, (args.exc_type, args.exc_value, args.exc_traceback))


def install_excepthooks() -> None:
    """Route uncaught exceptions of the main thread, other threads and finalizers through masked logging."""
    sys.excepthook = _sys_excepthook
    threading.excepthook = _thread_excepthook
    sys.unraisablehook = _unraisable_hook


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
    for noisy in ("kafka", "hvac", "urllib3", "httpx2", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(True)  # warnings.warn text goes through the masked handler too
    install_masking_filter(root)
    install_excepthooks()
    _configured = True


def get_logger(name: str) -> logging.Logger:
    """A stdlib logger; the JSON handler is installed by setup_logging at process start."""
    return logging.getLogger(name)

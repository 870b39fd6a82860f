"""Keep secret values out of logs and reprs.

The lead's quantumedge.shared.logs holds the one registry of secret values (register_secret / mask) and its
JSON formatter masks every line. This module adds:
- SecretMaskingFilter: the same masking as a logging.Filter, for handlers that do not use the JSON formatter
  (pytest's caplog, a third-party handler, a plain StreamHandler) — it rewrites the record itself;
- SecretData: the mapping SecretStore.read returns; values are plain str for the caller, but repr/str print
  only the keys, so a stray `log.info("%s", data)` or an f-string shows nothing secret.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping

from quantumedge.shared.logs import MASK, mask, register_secret

__all__ = ["MASK", "SecretData", "SecretMaskingFilter", "install_masking_filter", "mask", "register_secret"]


class SecretMaskingFilter(logging.Filter):
    """Masks every registered secret in a record's message, args, exception text and extra fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the record; mask what we have
            message = str(record.msg)
        record.msg = mask(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
            # exc_text is what formatters print; dropping exc_info stops them re-rendering it unmasked.
            record.exc_info = None
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if isinstance(value, str) and key not in ("msg", "exc_text", "stack_info") and not key.startswith("_"):
                masked = mask(value)
                if masked is not value:
                    record.__dict__[key] = masked
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


class SecretData(Mapping[str, str]):
    """Key -> value of one secret version, in memory only. repr/str never show values."""

    __slots__ = ("_values", "path", "version")

    def __init__(self, path: str, values: Mapping[str, object], version: int) -> None:
        self.path = path
        self.version = version
        self._values = {str(k): "" if v is None else str(v) for k, v in values.items()}
        for value in self._values.values():
            register_secret(value)

    def __getitem__(self, key: str) -> str:
        try:
            return self._values[key]
        except KeyError:
            # KeyError's message is the key name only, never a value.
            raise KeyError(f"secret {self.path!r} has no key {key!r} (keys: {sorted(self._values)})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        keys = ", ".join(f"{k!r}: {MASK!r}" for k in sorted(self._values))
        return f"SecretData(path={self.path!r}, version={self.version}, {{{keys}}})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SecretData):
            return self.path == other.path and self.version == other.version and self._values == other._values
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> object:
        # Pickling would be a way onto disk; secrets stay in this process.
        raise TypeError("SecretData cannot be pickled")

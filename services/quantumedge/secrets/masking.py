"""SecretData: the mapping SecretStore.read returns. Values are plain str for the caller, but repr/str print
only the keys, so a stray `log.info("%s", data)` or an f-string shows nothing secret; every value is
registered for masking the moment it is read.

Masking itself belongs to logging (quantumedge.shared.logs: the registry, `mask`, the filter, the JSON
formatter, the excepthooks); this module only imports from there, so there is no import circle.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from quantumedge.shared.logs import MASK, mask, register_secret

# MASK, mask and register_secret are re-exported for the secrets package's callers.
__all__ = ["MASK", "SecretData", "mask", "register_secret"]


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

"""The model registry: immutable versioned ONNX artifacts plus one manifest.

Layout (root = settings.models_dir, `models/` in the repository):
    <root>/<SYMBOL>/h<horizon>/<version>.onnx     never overwritten once written
    <root>/manifest.json                          every version's metadata + the promoted version per symbol x horizon
                                                  (+ at most one shadow version per symbol x horizon)

Writes are atomic (temp file in the same folder, fsync, os.replace) and manifest updates are
serialised with an exclusive lock on <root>/.manifest.lock, so a reader (the inference service)
sees either the old or the new manifest, never half of one. Promotion is always explicit.

A shadow version (manifest "shadow": {symbol: {horizon: version}}) is scored by inference beside the promoted
one and published on inference.shadow_signals.v1 only: it never trades. `promote_shadow` makes it the promoted
version (through the same gate check as `promote`), `discard_shadow` forgets it; the version stays registered.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
LOCK = ".manifest.lock"
FORMAT = 2  # 2: horizons in minutes, triple-barrier labels, gate figures, data source, drift reference
_VERSION_RE = re.compile(r"^v(\d+)$")


class RegistryError(RuntimeError):
    """The registry or an artifact is missing, inconsistent or tampered with; the message names the file."""


@dataclass
class ModelEntry:
    symbol: str
    horizon: int
    version: str
    path: str  # relative to the registry root
    sha256: str
    feature_schema_hash: str
    n_features: int
    training_data_fingerprint: str = ""
    created_at: str = ""
    calibration: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    label: dict[str, Any] = field(default_factory=dict)
    parity_max_abs_diff: float = 0.0
    size_bytes: int = 0
    # What it was trained on: {"kind": "synthetic"|"recording", "seed"/"path", "first", "last", "hours"}.
    data_source: dict[str, Any] = field(default_factory=dict)
    # The promotion gate: {"passed": bool, "failures": [...], "figures": {...}}.
    gate: dict[str, Any] = field(default_factory=dict)
    # Training distribution of each feature (inference/domain/drift.py).
    drift_reference: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int]:
        return self.symbol, self.horizon

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelEntry:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write(path: Path, data: bytes, overwrite: bool = True) -> None:
    """Write `data` to `path` so readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o644)  # mkstemp makes 0600; the service may run as another user
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails with FileExistsError instead of replacing: artifacts are immutable
            os.unlink(tmp)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class Registry:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    # -- reading ----------------------------------------------------------------------------------------
    def load(self) -> dict[str, Any]:
        """The manifest as a dict; an empty one when the registry does not exist yet."""
        try:
            raw = self.manifest_path.read_bytes()
        except FileNotFoundError:
            return {"format": FORMAT, "feature_schemas": {}, "models": [], "promoted": {}}
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RegistryError(f"{self.manifest_path} is not valid JSON: {exc}") from None
        if doc.get("format") != FORMAT:
            raise RegistryError(
                f"{self.manifest_path}: unsupported manifest format {doc.get('format')!r} (this build reads "
                f"{FORMAT}: retrain with `quantumedge train`)"
            )
        return doc

    def entries(self, doc: dict[str, Any] | None = None) -> list[ModelEntry]:
        doc = self.load() if doc is None else doc
        return [ModelEntry.from_dict(m) for m in doc.get("models", [])]

    def get(self, symbol: str, horizon: int, version: str, doc: dict[str, Any] | None = None) -> ModelEntry | None:
        for e in self.entries(doc):
            if e.symbol == symbol and e.horizon == int(horizon) and e.version == version:
                return e
        return None

    def promoted_version(self, symbol: str, horizon: int, doc: dict[str, Any] | None = None) -> str | None:
        doc = self.load() if doc is None else doc
        return doc.get("promoted", {}).get(symbol, {}).get(str(int(horizon)))

    def promoted(self, symbol: str, horizon: int, doc: dict[str, Any] | None = None) -> ModelEntry | None:
        doc = self.load() if doc is None else doc
        version = self.promoted_version(symbol, horizon, doc)
        return self.get(symbol, horizon, version, doc) if version else None

    def shadow_version(self, symbol: str, horizon: int, doc: dict[str, Any] | None = None) -> str | None:
        doc = self.load() if doc is None else doc
        return doc.get("shadow", {}).get(symbol, {}).get(str(int(horizon)))

    def shadow(self, symbol: str, horizon: int, doc: dict[str, Any] | None = None) -> ModelEntry | None:
        doc = self.load() if doc is None else doc
        version = self.shadow_version(symbol, horizon, doc)
        return self.get(symbol, horizon, version, doc) if version else None

    def read_verified(self, entry: ModelEntry, schema_hash: str | None = None, n_features: int | None = None) -> bytes:
        """The artifact's bytes after checking sha256 (and optionally the feature schema); RegistryError otherwise."""
        path = self.root / entry.path
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise RegistryError(
                f"model artifact missing: {path} ({entry.symbol} h{entry.horizon} {entry.version})"
            ) from None
        actual = sha256_bytes(data)
        if actual != entry.sha256:
            raise RegistryError(
                f"checksum mismatch for {path}: manifest says sha256 {entry.sha256}, "
                f"the file has {actual}; refusing to load it"
            )
        if schema_hash is not None and entry.feature_schema_hash != schema_hash:
            raise RegistryError(
                f"feature schema mismatch for {path}: model was trained on schema {entry.feature_schema_hash[:16]}, "
                f"this build computes {schema_hash[:16]} — retrain or deploy the matching code"
            )
        if n_features is not None and entry.n_features != n_features:
            raise RegistryError(f"{path} expects {entry.n_features} features, this build computes {n_features}")
        return data

    # -- writing ----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write of the manifest under an exclusive lock; the yielded doc is written back."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                doc = self.load()
                yield doc
                data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
                atomic_write(self.manifest_path, data)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def next_version(self, symbol: str, horizon: int, doc: dict[str, Any] | None = None) -> str:
        nums = [
            int(m.group(1))
            for e in self.entries(doc)
            if e.symbol == symbol and e.horizon == int(horizon) and (m := _VERSION_RE.match(e.version))
        ]
        return f"v{max(nums, default=0) + 1}"

    def register(
        self,
        symbol: str,
        horizon: int,
        artifact: bytes,
        meta: dict[str, Any],
        feature_schema: dict[str, Any],
        promote: bool = False,
    ) -> ModelEntry:
        """Store a new immutable version and add it to the manifest; promote it only when asked.

        Promoting a model without a passed gate is refused before anything is written; registered
        without `promote`, a refused model keeps its figures in the manifest but is never served."""
        if promote:
            _check_gate(f"{symbol} h{int(horizon)} (new version)", meta.get("gate"))
        with self._locked() as doc:
            version = self.next_version(symbol, horizon, doc)
            rel = f"{symbol}/h{int(horizon)}/{version}.onnx"
            path = self.root / rel
            if path.exists():
                raise RegistryError(f"{path} already exists and artifacts are immutable; the manifest is out of date")
            atomic_write(path, artifact, overwrite=False)
            entry = ModelEntry(
                symbol=symbol,
                horizon=int(horizon),
                version=version,
                path=rel,
                sha256=sha256_bytes(artifact),
                feature_schema_hash=feature_schema["hash"],
                n_features=len(feature_schema["names"]),
                created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                size_bytes=len(artifact),
                **meta,
            )
            doc.setdefault("feature_schemas", {})[feature_schema["hash"]] = {
                k: v for k, v in feature_schema.items() if k != "hash"
            }
            doc.setdefault("models", []).append(asdict(entry))
            doc["models"].sort(key=lambda m: (m["symbol"], m["horizon"], _version_num(m["version"])))
            if promote:
                doc.setdefault("promoted", {}).setdefault(symbol, {})[str(int(horizon))] = version
        return entry

    def promote(self, symbol: str, horizon: int, version: str) -> ModelEntry:
        """Make `version` the served one for symbol x horizon, after verifying its artifact."""
        with self._locked() as doc:
            entry = self._known(symbol, horizon, version, doc)
            self.read_verified(entry)
            _check_gate(f"{symbol} h{horizon} {version}", entry.gate)
            doc.setdefault("promoted", {}).setdefault(symbol, {})[str(int(horizon))] = version
            if self.shadow_version(symbol, horizon, doc) == version:
                _drop_shadow(doc, symbol, horizon)  # promoted: no longer a shadow of itself
        return entry

    def mark_shadow(self, symbol: str, horizon: int, version: str) -> ModelEntry:
        """Score `version` in shadow beside the promoted one (replacing any earlier shadow of symbol x horizon).

        The gate is not required: a shadow never trades, and watching a candidate live is what it is for."""
        with self._locked() as doc:
            entry = self._known(symbol, horizon, version, doc)
            self.read_verified(entry)
            if self.promoted_version(symbol, horizon, doc) == version:
                raise RegistryError(f"{symbol} h{horizon} {version} is the promoted version; a shadow must differ")
            doc.setdefault("shadow", {}).setdefault(symbol, {})[str(int(horizon))] = version
        return entry

    def discard_shadow(self, symbol: str, horizon: int) -> str:
        """Stop scoring the shadow of symbol x horizon; its version stays registered. Returns that version."""
        with self._locked() as doc:
            version = self.shadow_version(symbol, horizon, doc)
            if version is None:
                raise RegistryError(f"no shadow model for {symbol} h{horizon} in {self.manifest_path}")
            _drop_shadow(doc, symbol, horizon)
        return version

    def promote_shadow(self, symbol: str, horizon: int, version: str | None = None) -> ModelEntry:
        """Promote the shadow of symbol x horizon (refused when it failed the gate) and end its shadow run.

        With `version`, refuse unless that is still the shadow (the figures were computed for it)."""
        with self._locked() as doc:
            shadow = self.shadow_version(symbol, horizon, doc)
            if shadow is None:
                raise RegistryError(f"no shadow model for {symbol} h{horizon} in {self.manifest_path}")
            if version is not None and version != shadow:
                raise RegistryError(f"the shadow of {symbol} h{horizon} is {shadow}, not {version}")
            entry = self._known(symbol, horizon, shadow, doc)
            self.read_verified(entry)
            _check_gate(f"{symbol} h{horizon} {shadow}", entry.gate)
            doc.setdefault("promoted", {}).setdefault(symbol, {})[str(int(horizon))] = shadow
            _drop_shadow(doc, symbol, horizon)
        return entry

    def _known(self, symbol: str, horizon: int, version: str, doc: dict[str, Any]) -> ModelEntry:
        entry = self.get(symbol, horizon, version, doc)
        if entry is None:
            known = ", ".join(e.version for e in self.entries(doc) if e.key == (symbol, int(horizon))) or "none"
            raise RegistryError(f"no model {symbol} h{horizon} {version} in {self.manifest_path} (known: {known})")
        return entry


def _drop_shadow(doc: dict[str, Any], symbol: str, horizon: int) -> None:
    by_symbol = doc.get("shadow", {}).get(symbol, {})
    by_symbol.pop(str(int(horizon)), None)
    if not by_symbol:
        doc.get("shadow", {}).pop(symbol, None)


def _check_gate(what: str, gate: dict[str, Any] | None) -> None:
    if (gate or {}).get("passed") is not True:
        failures = "; ".join((gate or {}).get("failures", [])) or "no gate figures"
        raise RegistryError(f"{what} failed the promotion gate and cannot be promoted: {failures}")


def _version_num(version: str) -> int:
    m = _VERSION_RE.match(version)
    return int(m.group(1)) if m else 0

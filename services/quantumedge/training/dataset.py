"""Training data from recordings: offline features per symbol, a fingerprint of what a model learns
from, and the recording's events for the held-out backtest. Labels are in labels.py."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from quantumedge.inference.domain.features import FeatureConfig, OfflineFeatures, build_offline
from quantumedge.shared import market_files
from quantumedge.v1 import market_pb2


def load_features(root: Path, symbols: list[str], config: FeatureConfig) -> dict[str, OfflineFeatures]:
    """Offline features per symbol from a recording root (root/symbol=SYM/...)."""
    out = {}
    for symbol in symbols:
        files = market_files.recorded_files(Path(root), symbol)
        if not files:
            raise FileNotFoundError(
                f"no recorded files for {symbol} under {root} (expected {root}/symbol={symbol}/...)"
            )
        feats = build_offline(market_files.read_table(files), config).get(symbol)
        if feats is None or len(feats) == 0:
            raise ValueError(f"recording for {symbol} under {root} gives no feature rows (too short, or no book)")
        out[symbol] = feats
    return out


def fingerprint(feats: OfflineFeatures, schema_hash: str) -> str:
    """sha256 of what the model learns from: feature schema, row times, mids and feature values."""
    h = hashlib.sha256()
    h.update(schema_hash.encode())
    h.update(feats.symbol.encode())
    for arr in (feats.time_ns, feats.mid, feats.values, feats.segment):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def recording_events(root: Path, symbol: str, from_ns: int) -> Iterator[market_pb2.MarketEvent]:
    """The recording's events of `symbol` from `from_ns` on, in canonical order (the held-out backtest's)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from quantumedge.inference.domain.features import canonical_order

    table = market_files.read_table(market_files.recorded_files(Path(root), symbol))
    table = table.filter(pc.greater_equal(table.column("exchange_time_ns"), from_ns))
    return market_files.table_to_events(table.take(pa.array(canonical_order(table))))


def span(feats: dict[str, OfflineFeatures]) -> dict[str, object]:
    """First and last row time over the symbols, ISO, and the hours between."""
    from datetime import UTC, datetime

    firsts = [int(f.time_ns[0]) for f in feats.values() if len(f)]
    lasts = [int(f.time_ns[-1]) for f in feats.values() if len(f)]
    if not firsts:
        return {}
    lo, hi = min(firsts), max(lasts)

    def iso(ns: int) -> str:
        return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return {"first": iso(lo), "last": iso(hi), "hours": (hi - lo) / 3.6e12}

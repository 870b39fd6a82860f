"""Labelled datasets and walk-forward splits, built on the offline feature builder.

Label of a row: the direction of the mid `h` rows later (same segment), r = log(mid[t+h] / mid[t])
in bps. Up (1) when r > dead_band, down (0) when r < -dead_band; rows with |r| <= dead_band are
DROPPED (not a third class): the models stay binary, so `p_up` means P(up | the mid moves by more
than the band), and a dead band of 0 drops only the rows where the mid did not move at all.

Walk-forward: the emitted rows are cut into `folds + 1` consecutive blocks; fold k trains on
every row before block k whose label window ends more than `purge` rows before block k starts
(so no training label overlaps the test period), and tests on block k.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quantumedge.inference.features import FeatureConfig, OfflineFeatures, build_offline
from quantumedge.shared import market_files


@dataclass
class Labelled:
    rows: np.ndarray  # positions in the OfflineFeatures arrays (time order)
    X: np.ndarray  # float64 [n, F]
    y: np.ndarray  # int [n]
    ret_bps: np.ndarray


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


def label(feats: OfflineFeatures, horizon: int, dead_band_bps: float) -> Labelled:
    fut = feats.future_mid(horizon)
    with np.errstate(invalid="ignore"):
        ret = np.log(fut / feats.mid) * 1e4
        keep = np.isfinite(ret) & (np.abs(ret) > dead_band_bps)
    rows = np.flatnonzero(keep)
    return Labelled(rows, feats.values[rows], (ret[rows] > 0).astype(np.int64), ret[rows])


@dataclass(frozen=True)
class Fold:
    index: int
    train: np.ndarray  # indices into a Labelled
    test: np.ndarray


def walk_forward(n_rows: int, data: Labelled, horizon: int, folds: int, purge: int) -> list[Fold]:
    """Expanding-window folds over the emitted rows [0, n_rows), with a purge gap before each test block."""
    bounds = np.linspace(0, n_rows, folds + 2).astype(int)
    out = []
    for k in range(1, folds + 1):
        start, end = bounds[k], bounds[k + 1]
        train = np.flatnonzero(data.rows + horizon + purge < start)
        test = np.flatnonzero((data.rows >= start) & (data.rows < end))
        out.append(Fold(k, train, test))
    return out


def split_holdout(data: Labelled, test: np.ndarray, horizon: int, purge: int) -> tuple[np.ndarray, np.ndarray]:
    """Split a test block in time: first half calibrates, the second (after a purge gap) is the untouched holdout."""
    if len(test) == 0:
        return test, test
    rows = data.rows[test]
    mid = rows[0] + (rows[-1] - rows[0]) // 2
    calib = test[rows + horizon + purge < mid]
    hold = test[rows >= mid]
    return calib, hold


def fingerprint(feats: OfflineFeatures, schema_hash: str) -> str:
    """sha256 of what the model learns from: feature schema, row times, mids and feature values."""
    h = hashlib.sha256()
    h.update(schema_hash.encode())
    h.update(feats.symbol.encode())
    for arr in (feats.time_ns, feats.mid, feats.values, feats.segment):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()

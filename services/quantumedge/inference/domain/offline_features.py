"""The offline (vectorised) feature builder: every row of a table at once, for training and the backtester.

It aggregates a segment's events into each row's inputs with numpy/pyarrow and runs the same RowMath
as the online builder (features.py), so its rows are the online rows bit for bit. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quantumedge.inference.domain.feature_spec import DEFAULT_CONFIG, KIND_RANK, FeatureConfig, feature_names
from quantumedge.inference.domain.row_math import RowMath, make_row


@dataclass
class OfflineFeatures:
    """Emitted rows of one symbol, in time order, plus the two-sided book path (for labels)."""

    symbol: str
    time_ns: np.ndarray  # int64 [n]: row boundaries
    values: np.ndarray  # float64 [n, n_feat]
    regime: np.ndarray  # int32 [n]
    mid: np.ndarray  # float64 [n]
    segment: np.ndarray  # int64 [n]
    path_time_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # every two-sided book
    path_bid: np.ndarray = field(default_factory=lambda: np.zeros(0))
    path_ask: np.ndarray = field(default_factory=lambda: np.zeros(0))
    path_segment: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.time_ns)

    def take(self, idx: np.ndarray) -> OfflineFeatures:
        """A subset of the rows (the book path is kept whole)."""
        return OfflineFeatures(
            self.symbol,
            self.time_ns[idx],
            self.values[idx],
            self.regime[idx],
            self.mid[idx],
            self.segment[idx],
            self.path_time_ns,
            self.path_bid,
            self.path_ask,
            self.path_segment,
        )


def canonical_order(table: pa.Table) -> np.ndarray:
    """Row indices of `table` in canonical order: exchange time, kind rank, original position."""
    kinds = table.column("kind").to_numpy(zero_copy_only=False)
    rank = np.array([KIND_RANK.get(k, 9) for k in kinds], dtype=np.int8) if len(kinds) else np.zeros(0, np.int8)
    times = table.column("exchange_time_ns").to_numpy()
    return np.lexsort((rank, times))  # lexsort is stable: ties keep their original order


def build_offline(table: pa.Table, config: FeatureConfig = DEFAULT_CONFIG) -> dict[str, OfflineFeatures]:
    """Feature rows per symbol from a table with market_files.SCHEMA (any row order)."""
    out: dict[str, OfflineFeatures] = {}
    symbols = pc.unique(table.column("symbol")).to_pylist() if table.num_rows else []
    for symbol in sorted(symbols):
        sub = table.filter(pc.equal(table.column("symbol"), symbol))
        sub = sub.take(pa.array(canonical_order(sub)))
        out[symbol] = _symbol_offline(symbol, sub, config)
    return out


def _col(table: pa.Table, name: str, idx: np.ndarray, dtype=np.float64) -> np.ndarray:
    return table.column(name).take(pa.array(idx)).to_numpy(zero_copy_only=False).astype(dtype)


def _level_sums(levels: pa.ChunkedArray, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per list: sum of quantity and of price*quantity over its first k levels (in level order)."""
    arr = levels.combine_chunks() if isinstance(levels, pa.ChunkedArray) else levels
    arr = pc.fill_null(arr, pa.scalar([], type=arr.type)) if arr.null_count else arr
    sliced = pc.list_slice(arr, 0, k)
    parents = pc.list_parent_indices(sliced).to_numpy()
    flat = pc.list_flatten(sliced)
    q = pc.struct_field(flat, "quantity").to_numpy(zero_copy_only=False).astype(np.float64)
    p = pc.struct_field(flat, "price").to_numpy(zero_copy_only=False).astype(np.float64)
    # bincount adds in array order, as the online loop does: the same float64 sums.
    return np.bincount(parents, weights=q, minlength=n), np.bincount(parents, weights=p * q, minlength=n)


_EMPTY_PATH = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0, np.int64))


def _symbol_offline(symbol: str, t: pa.Table, cfg: FeatureConfig) -> OfflineFeatures:
    kinds = t.column("kind").to_numpy(zero_copy_only=False)
    times = t.column("exchange_time_ns").to_numpy()
    is_gap = kinds == "gap"
    parts, paths = [], []
    n = len(kinds)
    ends = [*np.flatnonzero(is_gap).tolist(), n]
    for seg, g in enumerate(ends):
        lo = ends[seg - 1] + 1 if seg else 0
        if g > lo:
            term = int(times[g]) if g < n else int(times[g - 1])
            idx = np.arange(lo, g)
            parts.append(_segment(symbol, t, kinds, times, idx, term, seg, cfg))
            paths.append(_path(t, kinds, times, idx, seg))
    n_feat = len(feature_names(cfg))
    rows = [r for p in parts for r in p]
    path = [np.concatenate([p[i] for p in paths]) for i in range(4)] if paths else list(_EMPTY_PATH)
    return OfflineFeatures(
        symbol,
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.float64).reshape(len(rows), n_feat),
        np.array([r[2] for r in rows], dtype=np.int32),
        np.array([r[3] for r in rows], dtype=np.float64),
        np.array([r[4] for r in rows], dtype=np.int64),
        path[0].astype(np.int64),
        path[1],
        path[2],
        path[3].astype(np.int64),
    )


def _two_sided(t: pa.Table, kinds: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pos = idx[kinds[idx] == "top_of_book"]
    bid = _col(t, "bid_price", pos)
    ask = _col(t, "ask_price", pos)
    keep = (bid > 0) & (ask > 0)
    return pos[keep], bid[keep], ask[keep]


def _path(t: pa.Table, kinds: np.ndarray, times: np.ndarray, idx: np.ndarray, seg: int) -> tuple:
    pos, bid, ask = _two_sided(t, kinds, idx)
    return times[pos], bid, ask, np.full(len(pos), seg, dtype=np.int64)


def _segment(symbol, t, kinds, times, idx, term: int, seg: int, cfg: FeatureConfig) -> list[tuple]:
    """(boundary, values, regime, mid, segment) of every emitted row of one segment."""
    step = cfg.interval_ns
    first_b = (int(times[idx[0]]) // step + 1) * step
    last_b = (term // step) * step
    if last_b < first_b:
        return []
    nb = (last_b - first_b) // step + 1
    boundaries = first_b + step * np.arange(nb, dtype=np.int64)
    tob_pos, bid, ask = _two_sided(t, kinds, idx)
    if not len(tob_pos):
        return []
    bq = _col(t, "bid_quantity", tob_pos)
    aq = _col(t, "ask_quantity", tob_pos)
    last_tob = np.searchsorted(times[tob_pos], boundaries, side="left") - 1  # latest book strictly before B

    trade_pos = idx[kinds[idx] == "trade"]
    slot = (times[trade_pos] // step + 1) * step  # the first boundary after the trade
    keep = slot <= last_b
    trade_pos, slot = trade_pos[keep], ((slot[keep] - first_b) // step).astype(np.int64)
    price = _col(t, "price", trade_pos)
    qty = _col(t, "quantity", trade_pos)
    maker = _col(t, "buyer_is_maker", trade_pos, dtype=bool)
    n_trades = np.bincount(slot, minlength=nb).tolist()
    buy = np.bincount(slot, weights=np.where(maker, 0.0, qty), minlength=nb).tolist()
    sell = np.bincount(slot, weights=np.where(maker, qty, 0.0), minlength=nb).tolist()
    notional = np.bincount(slot, weights=price * qty, minlength=nb).tolist()

    depth_pos = idx[kinds[idx] == "depth"]
    nd = len(depth_pos)
    k1, k2 = cfg.depth_levels
    bids = t.column("bids").take(pa.array(depth_pos))
    asks = t.column("asks").take(pa.array(depth_pos))
    b1, _ = _level_sums(bids, k1, nd)
    b2, bn = _level_sums(bids, k2, nd)
    a1, _ = _level_sums(asks, k1, nd)
    a2, an = _level_sums(asks, k2, nd)
    depth_rows = list(zip(b1.tolist(), b2.tolist(), a1.tolist(), a2.tolist(), (bn + an).tolist(), strict=True))
    last_depth = (np.searchsorted(times[depth_pos], boundaries, side="left") - 1).tolist()

    tobs = list(zip(bid.tolist(), bq.tolist(), ask.tolist(), aq.tolist(), strict=True))
    math_ = RowMath(cfg)
    out = []
    for j, (b, k) in enumerate(zip(boundaries.tolist(), last_tob.tolist(), strict=True)):
        if k < 0:
            continue
        d = last_depth[j]
        values = math_.push(tobs[k], depth_rows[d] if d >= 0 else (), (n_trades[j], buy[j], sell[j], notional[j]))
        if values is not None:
            row = make_row(symbol, b, tobs[k], values)
            out.append((b, values, row.regime, row.mid, seg))
    return out

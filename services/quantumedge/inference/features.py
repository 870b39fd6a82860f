"""The one feature definition, built two ways: online (per event) and offline (per table).

Rows are sampled on a clock (exchange time), not on stream arrivals:
  * Events of one symbol are taken in canonical order: exchange time, then kind
    (gap < trade < depth < top_of_book), then arrival order. The service's row clock
    (inference/rowclock.py) restores that order from the three topics; `canonical_order` sorts a table.
  * Row boundaries are the multiples of `row_interval_ms` of exchange time. The row of boundary B is
    made of the events strictly before B: the latest two-sided top of book, the latest depth update and
    every trade in [B - interval, B). It is closed by the first event at or after B (or by the row
    clock when time passes B), so a quiet stream never holds it.
  * A segment starts at its first event; its first boundary is the first multiple after that event. A
    boundary before the first top of book makes no row. A row is *emitted* once `warmup_rows` rows came
    before it in its segment and a depth update has been seen (the warm-up gate).
  * A gap marker closes the boundaries up to its time and ends the segment: all state is dropped.
Rolling windows and EMAs count rows, so a window of 60 rows is 60 intervals of time.

The event-to-row aggregation is written twice (per event online, vectorised offline); the arithmetic
of a row from its inputs is one function (`_RowMath`), so both builders give the same float64 bits.
This module does no I/O: the service, the trainer and the backtester all import it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from quantumedge.v1 import common_pb2, market_pb2

FEATURE_VERSION = 2
BPS = 1e4

KIND_RANK = {"gap": 0, "trade": 1, "depth": 2, "top_of_book": 3}


@dataclass(frozen=True)
class FeatureConfig:
    row_interval_ms: int = 1000
    return_windows: tuple[int, ...] = (10, 30, 60, 120)
    vol_windows: tuple[int, int] = (30, 120)  # (short, long); the short one feeds vol_ratio
    trend_window: int = 120
    ema_fast: int = 30  # spans, in rows
    ema_slow: int = 120
    vol_baseline_span: int = 3600  # long-run volatility the regime compares against
    flow_ema: int = 30
    flow_ema_slow: int = 300  # minute-scale order flow (and depth imbalance) pressure
    notional_ema: int = 60
    depth_levels: tuple[int, int] = (5, 10)
    high_vol_ratio: float = 1.0  # short vol above this multiple of the baseline = high volatility
    trend_z: float = 1.0  # |trend z-score| above this = trending
    warmup_rows: int = 120

    def __post_init__(self) -> None:
        if self.row_interval_ms <= 0:
            raise ValueError(f"row_interval_ms={self.row_interval_ms} must be > 0: rows are sampled on a clock")
        need = max(*self.return_windows, *self.vol_windows, self.trend_window)
        if self.warmup_rows < need:
            raise ValueError(f"warmup_rows={self.warmup_rows} is shorter than the longest window ({need})")
        if self.trend_window not in self.vol_windows:
            raise ValueError(f"trend_window={self.trend_window} must be one of vol_windows {self.vol_windows}")

    @property
    def interval_ns(self) -> int:
        return self.row_interval_ms * 1_000_000


DEFAULT_CONFIG = FeatureConfig()


def feature_names(config: FeatureConfig = DEFAULT_CONFIG) -> list[str]:
    short, long_ = config.vol_windows
    k1, k2 = config.depth_levels
    return [
        *(f"ret_{w}_bps" for w in config.return_windows),
        f"vol_{short}_bps",
        f"vol_{long_}_bps",
        "vol_ratio",
        "ema_fast_slope_bps",
        "ema_gap_bps",
        "trend_z",
        "spread_bps",
        "tob_imbalance",
        f"depth_imbalance_{k1}",
        f"depth_imbalance_{k2}",
        "depth_imbalance_ema",
        "depth_notional_log",
        "trade_count",
        "trade_flow",
        "trade_flow_ema",
        "trade_flow_ema_slow",
        "trade_notional_log_ema",
        "high_vol",
        "trend_dir",
    ]


@dataclass(frozen=True)
class FeatureSchema:
    version: int
    names: tuple[str, ...]
    config: FeatureConfig
    hash: str = field(init=False)

    def __post_init__(self) -> None:
        doc = json.dumps(
            {"version": self.version, "names": list(self.names), "config": asdict(self.config)}, sort_keys=True
        )
        object.__setattr__(self, "hash", hashlib.sha256(doc.encode()).hexdigest())

    @property
    def size(self) -> int:
        return len(self.names)

    def to_dict(self) -> dict:
        return {"version": self.version, "hash": self.hash, "names": list(self.names), "config": asdict(self.config)}


def make_schema(config: FeatureConfig = DEFAULT_CONFIG) -> FeatureSchema:
    return FeatureSchema(FEATURE_VERSION, tuple(feature_names(config)), config)


FEATURE_SCHEMA = make_schema()
IDX_HIGH_VOL = FEATURE_SCHEMA.names.index("high_vol")
IDX_TREND_DIR = FEATURE_SCHEMA.names.index("trend_dir")
IDX_SPREAD = FEATURE_SCHEMA.names.index("spread_bps")
IDX_VOL_SHORT = FEATURE_SCHEMA.names.index(f"vol_{DEFAULT_CONFIG.vol_windows[0]}_bps")


def regime_of(high_vol: float, trend_dir: float) -> int:
    """Volatility bucket x trend bucket -> quantumedge.v1.Regime."""
    trend = 0 if trend_dir > 0 else 1 if trend_dir < 0 else 2  # up, down, range
    return _REGIMES[1 if high_vol > 0.5 else 0][trend]


_REGIMES = (
    (common_pb2.REGIME_LOW_VOL_TREND_UP, common_pb2.REGIME_LOW_VOL_TREND_DOWN, common_pb2.REGIME_LOW_VOL_RANGE),
    (common_pb2.REGIME_HIGH_VOL_TREND_UP, common_pb2.REGIME_HIGH_VOL_TREND_DOWN, common_pb2.REGIME_HIGH_VOL_RANGE),
)


def _alpha(span: int) -> float:
    return 2.0 / (span + 1.0)


def _ratio(a: float, b: float) -> float:
    s = a + b
    return (a - b) / s if s > 0 else 0.0


@dataclass(slots=True)
class FeatureRow:
    symbol: str
    time_ns: int  # the row's boundary: every input is strictly before it
    values: list[float]
    regime: int
    mid: float
    spread_bps: float
    bid: float = 0.0
    ask: float = 0.0


class _RowMath:
    """A row's values from its inputs, the one arithmetic both builders run (same float64 bits).

    Window sums are exact (math.fsum over the window), so no running-sum drift can part the builders."""

    def __init__(self, cfg: FeatureConfig) -> None:
        self.cfg = cfg
        self.rows = 0
        self.lm_len = max(*cfg.return_windows, cfg.trend_window) + 1
        self.lm = [0.0] * self.lm_len  # ring of log mids
        self.r_len = max(cfg.vol_windows)
        self.r = [0.0] * self.r_len  # ring of 1-row returns (bps)
        self.ema_f = self.ema_s = self.prev_f = self.var_base = 0.0
        self.alphas = tuple(
            _alpha(s)
            for s in (
                cfg.vol_baseline_span,
                cfg.ema_fast,
                cfg.ema_slow,
                cfg.flow_ema,
                cfg.flow_ema_slow,
                cfg.notional_ema,
            )
        )
        self.flow_ema = self.flow_slow = self.depth_ema = self.notional_ema = 0.0

    def push(self, tob: tuple[float, float, float, float], depth: tuple, trades: tuple) -> list[float] | None:
        """tob (bid, bid qty, ask, ask qty); depth (b1, b2, a1, a2, notional) or () when none yet;
        trades (count, buy qty, sell qty, notional). The values once warmed up, else None."""
        cfg = self.cfg
        bid, bq, ask, aq = tob
        mid = (bid + ask) * 0.5
        lm = math.log(mid)
        n_trades, buy, sell, notional = trades
        flow = _ratio(buy, sell)
        nlog = math.log1p(notional)
        if depth:
            b1, b2, a1, a2, dn = depth
            d_imb1, d_imb2, d_notional = _ratio(b1, a1), _ratio(b2, a2), math.log1p(dn)
        else:
            d_imb1 = d_imb2 = d_notional = 0.0
        i = self.rows
        self.rows = i + 1
        lm_len, r_len = self.lm_len, self.r_len
        a_base, a_fast, a_slow, a_flow, a_flow_slow, a_notional = self.alphas
        if i == 0:
            self.ema_f = self.ema_s = lm
            self.flow_ema = self.flow_slow = flow
            self.depth_ema = d_imb2
            self.notional_ema = nlog
        else:
            r = (lm - self.lm[(i - 1) % lm_len]) * BPS
            self.r[(i - 1) % r_len] = r  # return index i-1 (returns start at row 1)
            self.var_base = r * r if i == 1 else self.var_base + a_base * (r * r - self.var_base)
            self.prev_f = self.ema_f
            self.ema_f += a_fast * (lm - self.ema_f)
            self.ema_s += a_slow * (lm - self.ema_s)
            self.flow_ema += a_flow * (flow - self.flow_ema)
            self.flow_slow += a_flow_slow * (flow - self.flow_slow)
            self.depth_ema += a_flow_slow * (d_imb2 - self.depth_ema)
            self.notional_ema += a_notional * (nlog - self.notional_ema)
        self.lm[i % lm_len] = lm
        if i < cfg.warmup_rows or not depth:
            return None
        out = [(lm - self.lm[(i - w) % lm_len]) * BPS for w in cfg.return_windows]
        vols = {}
        for w in cfg.vol_windows:
            window = [self.r[(k - 1) % r_len] for k in range(i - w + 1, i + 1)]
            s1 = math.fsum(window)
            var = (math.fsum(v * v for v in window) - s1 * s1 / w) / (w - 1)
            vols[w] = math.sqrt(var) if var > 0 else 0.0
        short, long_ = cfg.vol_windows
        base = math.sqrt(self.var_base)
        vol_ratio = vols[short] / base if base > 0 else 1.0
        tw = cfg.trend_window
        vt = vols[tw]
        trend_z = (lm - self.lm[(i - tw) % lm_len]) * BPS / (vt * math.sqrt(tw)) if vt > 0 else 0.0
        out += [
            vols[short],
            vols[long_],
            vol_ratio,
            (self.ema_f - self.prev_f) * BPS,
            (self.ema_f - self.ema_s) * BPS,
            trend_z,
            (ask - bid) / mid * BPS,
            _ratio(bq, aq),
            d_imb1,
            d_imb2,
            self.depth_ema,
            d_notional,
            float(n_trades),
            flow,
            self.flow_ema,
            self.flow_slow,
            self.notional_ema,
            1.0 if vol_ratio > cfg.high_vol_ratio else 0.0,
            1.0 if trend_z > cfg.trend_z else -1.0 if trend_z < -cfg.trend_z else 0.0,
        ]
        return out


def _make_row(symbol: str, boundary: int, tob: tuple, values: list[float]) -> FeatureRow:
    bid, _, ask, _ = tob
    return FeatureRow(
        symbol,
        boundary,
        values,
        regime_of(values[IDX_HIGH_VOL], values[IDX_TREND_DIR]),
        (bid + ask) * 0.5,
        values[IDX_SPREAD],
        bid,
        ask,
    )


# ---------------------------------------------------------------------------------------------------
# Online
# ---------------------------------------------------------------------------------------------------


class _SymbolState:
    """One symbol's segment: the row clock, the latest book inputs and the trades of the open row."""

    def __init__(self, cfg: FeatureConfig) -> None:
        self.cfg = cfg
        self.math = _RowMath(cfg)
        self.next_boundary = 0  # 0 = the segment has not started
        self.tob: tuple[float, float, float, float] | None = None
        self.depth: tuple = ()
        self.n_trades = 0
        self.buy = self.sell = self.notional = 0.0

    @property
    def warmed_up(self) -> bool:
        return self.math.rows > self.cfg.warmup_rows and bool(self.depth)

    def start(self, time_ns: int) -> None:
        if not self.next_boundary:
            step = self.cfg.interval_ns
            self.next_boundary = (time_ns // step + 1) * step

    def close_until(self, symbol: str, time_ns: int) -> list[FeatureRow]:
        """Close every boundary at or before `time_ns`; the emitted rows, oldest first."""
        out: list[FeatureRow] = []
        step = self.cfg.interval_ns
        while self.next_boundary and self.next_boundary <= time_ns:
            boundary = self.next_boundary
            self.next_boundary = boundary + step
            trades = (self.n_trades, self.buy, self.sell, self.notional)
            self.n_trades = 0
            self.buy = self.sell = self.notional = 0.0
            if self.tob is None:
                continue  # no two-sided book yet: no row
            values = self.math.push(self.tob, self.depth, trades)
            if values is not None:
                out.append(_make_row(symbol, boundary, self.tob, values))
        return out

    def on_trade(self, price: float, qty: float, buyer_is_maker: bool) -> None:
        self.n_trades += 1
        if buyer_is_maker:
            self.sell += qty
        else:
            self.buy += qty
        self.notional += price * qty

    def on_depth(self, bids, asks) -> None:  # sequences of objects with .price and .quantity
        k1, k2 = self.cfg.depth_levels
        b1 = b2 = a1 = a2 = bn = an = 0.0
        for i, lv in enumerate(bids[:k2]):
            q = lv.quantity
            if i < k1:
                b1 += q
            b2 += q
            bn += lv.price * q
        for i, lv in enumerate(asks[:k2]):
            q = lv.quantity
            if i < k1:
                a1 += q
            a2 += q
            an += lv.price * q
        self.depth = (b1, b2, a1, a2, bn + an)


class OnlineFeatures:
    """Per-symbol incremental state. `update(event)` returns the rows the event's time closes (usually
    none or one), computed before the event is applied; `close_until` closes rows when time passes."""

    def __init__(self, config: FeatureConfig = DEFAULT_CONFIG) -> None:
        self.config = config
        self.schema = make_schema(config)
        self._states: dict[str, _SymbolState] = {}

    def state(self, symbol: str) -> _SymbolState:
        st = self._states.get(symbol)
        if st is None:
            st = self._states[symbol] = _SymbolState(self.config)
        return st

    def reset(self, symbol: str) -> None:
        self._states.pop(symbol, None)

    def warmed_up(self, symbol: str) -> bool:
        st = self._states.get(symbol)
        return bool(st and st.warmed_up)

    def close_until(self, symbol: str, time_ns: int) -> list[FeatureRow]:
        st = self._states.get(symbol)
        return st.close_until(symbol, time_ns) if st is not None else []

    def update(self, event: market_pb2.MarketEvent) -> list[FeatureRow]:
        kind = event.WhichOneof("payload")
        symbol, t = event.symbol, event.exchange_time_ns
        if kind == "gap":
            rows = self.close_until(symbol, t)
            self.reset(symbol)
            return rows
        st = self.state(symbol)
        rows = st.close_until(symbol, t)
        st.start(t)
        if kind == "top_of_book":
            b = event.top_of_book
            if b.bid_price > 0 and b.ask_price > 0:  # an empty side has no mid: the row keeps the last book
                st.tob = (b.bid_price, b.bid_quantity, b.ask_price, b.ask_quantity)
        elif kind == "trade":
            tr = event.trade
            st.on_trade(tr.price, tr.quantity, tr.buyer_is_maker)
        elif kind == "depth":
            st.on_depth(event.depth.bids, event.depth.asks)
        return rows


# ---------------------------------------------------------------------------------------------------
# Offline
# ---------------------------------------------------------------------------------------------------


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
    math_ = _RowMath(cfg)
    out = []
    for j, (b, k) in enumerate(zip(boundaries.tolist(), last_tob.tolist(), strict=True)):
        if k < 0:
            continue
        d = last_depth[j]
        values = math_.push(tobs[k], depth_rows[d] if d >= 0 else (), (n_trades[j], buy[j], sell[j], notional[j]))
        if values is not None:
            row = _make_row(symbol, b, tobs[k], values)
            out.append((b, values, row.regime, row.mid, seg))
    return out

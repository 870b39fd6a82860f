"""The one feature definition, built two ways: online (per event, O(1)) and offline (vectorised, per table).

Which events make a row (both builders, exactly):
  * Events of one symbol are taken in canonical order: exchange time, then kind
    (gap < trade < depth < top_of_book), then arrival order. The service's reorder buffer
    (inference/ordering.py) restores that order from the three topics; `canonical_order` sorts a table.
  * A top_of_book event is a *candidate row* when it is the first of its time bucket
    (`row_interval_ms`; 0 = every top of book). Other top_of_book events are ignored, so a fast
    book-ticker firehose gives one row per bucket, and the horizons (in rows) mean a fixed time.
  * A candidate row folds in the latest depth update before it and every trade since the previous
    candidate row. It is *emitted* (the warm-up gate) once `warmup_rows` candidate rows came before it
    in its segment and a depth update has been seen.
  * A gap marker ends a segment: all state is dropped, and warm-up starts again.
Rolling windows and EMAs count candidate rows, not time.

Prices enter as log mids; returns, volatilities, EMA slopes and spreads are in basis points.
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

FEATURE_VERSION = 1
BPS = 1e4

KIND_RANK = {"gap": 0, "trade": 1, "depth": 2, "top_of_book": 3}


@dataclass(frozen=True)
class FeatureConfig:
    return_windows: tuple[int, ...] = (1, 5, 20, 60)
    vol_windows: tuple[int, int] = (20, 100)  # (short, long); the short one feeds vol_ratio
    trend_window: int = 100
    ema_fast: int = 10  # spans, in rows
    ema_slow: int = 50
    vol_baseline_span: int = 3000  # long-run volatility the regime compares against
    flow_ema: int = 10
    notional_ema: int = 20
    depth_levels: tuple[int, int] = (5, 10)
    high_vol_ratio: float = 1.0  # short vol above this multiple of the baseline = high volatility
    trend_z: float = 1.0  # |trend z-score| above this = trending
    row_interval_ms: int = 100
    warmup_rows: int = 100

    def __post_init__(self) -> None:
        need = max(*self.return_windows, *self.vol_windows, self.trend_window)
        if self.warmup_rows < need:
            raise ValueError(f"warmup_rows={self.warmup_rows} is shorter than the longest window ({need})")
        if self.trend_window not in self.vol_windows:
            raise ValueError(f"trend_window={self.trend_window} must be one of vol_windows {self.vol_windows}")


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
        "depth_notional_log",
        "trade_count",
        "trade_flow",
        "trade_flow_ema",
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
    time_ns: int
    values: list[float]
    regime: int
    mid: float
    spread_bps: float


# ---------------------------------------------------------------------------------------------------
# Online
# ---------------------------------------------------------------------------------------------------


class _SymbolState:
    """Everything one symbol's features need; every update is O(1) (fixed-size rings, running sums)."""

    def __init__(self, cfg: FeatureConfig) -> None:
        self.cfg = cfg
        self.rows = 0  # candidate rows in this segment
        self.last_bucket = -1
        self.lm_len = max(*cfg.return_windows, cfg.trend_window) + 1
        self.lm = [0.0] * self.lm_len  # ring of log mids
        self.r_len = max(cfg.vol_windows)
        self.r = [0.0] * self.r_len  # ring of 1-row returns (bps)
        self.sums = {w: [0.0, 0.0] for w in cfg.vol_windows}  # running (sum, sum of squares) per window
        self.ema_f = self.ema_s = self.prev_f = 0.0
        self.var_base = 0.0
        self.alphas = tuple(
            _alpha(s) for s in (cfg.vol_baseline_span, cfg.ema_fast, cfg.ema_slow, cfg.flow_ema, cfg.notional_ema)
        )
        self.flow_ema = self.notional_ema = 0.0
        self.have_depth = False
        self.d_imb1 = self.d_imb2 = self.d_notional = 0.0
        self.n_trades = 0
        self.buy = self.sell = self.notional = 0.0

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
        self.d_imb1 = _ratio(b1, a1)
        self.d_imb2 = _ratio(b2, a2)
        self.d_notional = math.log1p(bn + an)
        self.have_depth = True

    def on_tob(self, time_ns: int, bid: float, bq: float, ask: float, aq: float) -> list[float] | None:
        cfg = self.cfg
        if cfg.row_interval_ms:
            bucket = time_ns // (cfg.row_interval_ms * 1_000_000)
            if bucket <= self.last_bucket:
                return None
            self.last_bucket = bucket
        mid = (bid + ask) * 0.5
        lm = math.log(mid)
        i = self.rows
        self.rows = i + 1
        flow = _ratio(self.buy, self.sell)
        nlog = math.log1p(self.notional)
        n_trades = float(self.n_trades)
        self.n_trades = 0
        self.buy = self.sell = self.notional = 0.0
        lm_len, r_len = self.lm_len, self.r_len
        if i == 0:
            self.ema_f = self.ema_s = lm
            self.flow_ema = flow
            self.notional_ema = nlog
        else:
            r = (lm - self.lm[(i - 1) % lm_len]) * BPS
            slot = (i - 1) % r_len  # return index i-1 (returns start at row 1)
            for w, s in self.sums.items():
                if i > w:
                    old = self.r[(i - 1 - w) % r_len]
                    s[0] -= old
                    s[1] -= old * old
                s[0] += r
                s[1] += r * r
            self.r[slot] = r
            if i % r_len == 0:
                self._resum(i)
            a_base, a_fast, a_slow, a_flow, a_notional = self.alphas
            self.var_base = r * r if i == 1 else self.var_base + a_base * (r * r - self.var_base)
            self.prev_f = self.ema_f
            self.ema_f += a_fast * (lm - self.ema_f)
            self.ema_s += a_slow * (lm - self.ema_s)
            self.flow_ema += a_flow * (flow - self.flow_ema)
            self.notional_ema += a_notional * (nlog - self.notional_ema)
        self.lm[i % lm_len] = lm
        if i < cfg.warmup_rows or not self.have_depth:
            return None

        out = [(lm - self.lm[(i - w) % lm_len]) * BPS for w in cfg.return_windows]
        vols = {}
        for w, (s1, s2) in self.sums.items():
            var = (s2 - s1 * s1 / w) / (w - 1)
            vols[w] = math.sqrt(var) if var > 0 else 0.0
        short, long_ = cfg.vol_windows
        base = math.sqrt(self.var_base)
        vol_ratio = vols[short] / base if base > 0 else 1.0
        tw = cfg.trend_window
        vt = vols.get(tw, 0.0)
        trend_z = (lm - self.lm[(i - tw) % lm_len]) * BPS / (vt * math.sqrt(tw)) if vt > 0 else 0.0
        spread = (ask - bid) / mid * BPS
        out += [
            vols[short],
            vols[long_],
            vol_ratio,
            (self.ema_f - self.prev_f) * BPS,
            (self.ema_f - self.ema_s) * BPS,
            trend_z,
            spread,
            _ratio(bq, aq),
            self.d_imb1,
            self.d_imb2,
            self.d_notional,
            n_trades,
            flow,
            self.flow_ema,
            self.notional_ema,
            1.0 if vol_ratio > cfg.high_vol_ratio else 0.0,
            1.0 if trend_z > cfg.trend_z else -1.0 if trend_z < -cfg.trend_z else 0.0,
        ]
        return out

    def _resum(self, i: int) -> None:
        """Exact sums every r_len rows, so float drift of the running sums stays bounded (amortised O(1))."""
        r_len = self.r_len
        for w, s in self.sums.items():
            vals = [self.r[(k - 1) % r_len] for k in range(i - w + 1, i + 1)]
            s[0] = math.fsum(vals)
            s[1] = math.fsum(v * v for v in vals)


class OnlineFeatures:
    """Per-symbol incremental state; `update(event)` returns a FeatureRow when the event makes one."""

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
        return bool(st and st.rows > self.config.warmup_rows and st.have_depth)

    def update(self, event: market_pb2.MarketEvent) -> FeatureRow | None:
        kind = event.WhichOneof("payload")
        if kind == "top_of_book":
            b = event.top_of_book
            return self.on_tob(
                event.symbol, event.exchange_time_ns, b.bid_price, b.bid_quantity, b.ask_price, b.ask_quantity
            )
        if kind == "trade":
            t = event.trade
            self.state(event.symbol).on_trade(t.price, t.quantity, t.buyer_is_maker)
        elif kind == "depth":
            self.state(event.symbol).on_depth(event.depth.bids, event.depth.asks)
        elif kind == "gap":
            self.reset(event.symbol)
        return None

    def on_tob(self, symbol: str, time_ns: int, bid: float, bq: float, ask: float, aq: float) -> FeatureRow | None:
        if not (bid > 0 and ask > 0):
            return None  # an empty side has no mid; the row waits for a two-sided book
        values = self.state(symbol).on_tob(time_ns, bid, bq, ask, aq)
        if values is None:
            return None
        regime = regime_of(values[IDX_HIGH_VOL], values[IDX_TREND_DIR])
        return FeatureRow(symbol, time_ns, values, regime, (bid + ask) * 0.5, values[IDX_SPREAD])


# ---------------------------------------------------------------------------------------------------
# Offline
# ---------------------------------------------------------------------------------------------------


@dataclass
class OfflineFeatures:
    """Emitted rows of one symbol, in time order. Rows of one segment are consecutive and contiguous."""

    symbol: str
    time_ns: np.ndarray  # int64 [n]
    values: np.ndarray  # float64 [n, n_feat]
    regime: np.ndarray  # int32 [n]
    mid: np.ndarray  # float64 [n]
    segment: np.ndarray  # int64 [n]

    def __len__(self) -> int:
        return len(self.time_ns)

    def future_mid(self, h: int) -> np.ndarray:
        """Mid `h` rows later in the same segment; NaN where the segment ends first."""
        out = np.full(len(self), np.nan)
        if h < len(self):
            same = self.segment[h:] == self.segment[:-h] if h else np.ones(len(self), bool)
            out[: len(self) - h] = np.where(same, self.mid[h:], np.nan)
        return out


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
    return np.bincount(parents, weights=q, minlength=n), np.bincount(parents, weights=p * q, minlength=n)


def _ratio_v(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    s = a + b
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s > 0, (a - b) / np.where(s > 0, s, 1.0), 0.0)


def _ema(values: np.ndarray, span: int) -> np.ndarray:
    """EMA seeded with the first value. Recursive by nature: a tight loop with the online update's exact arithmetic."""
    a = _alpha(span)
    out = values.tolist()
    e = out[0] if out else 0.0
    for j in range(1, len(out)):
        e += a * (out[j] - e)
        out[j] = e
    return np.asarray(out, dtype=np.float64)


def _rolling_sum(x: np.ndarray, w: int) -> np.ndarray:
    """Sum of each window of w values ending at j (NaN before the window is full)."""
    out = np.full(len(x), np.nan)
    if len(x) >= w:
        out[w - 1 :] = np.lib.stride_tricks.sliding_window_view(x, w).sum(axis=1)
    return out


def _symbol_offline(symbol: str, t: pa.Table, cfg: FeatureConfig) -> OfflineFeatures:
    kinds = t.column("kind").to_numpy(zero_copy_only=False)
    times = t.column("exchange_time_ns").to_numpy()
    is_gap = kinds == "gap"
    seg_all = np.cumsum(is_gap)
    parts = []
    starts = np.flatnonzero(np.r_[True, is_gap[1:]]) if len(kinds) else np.zeros(0, int)
    ends = np.r_[starts[1:], len(kinds)]
    for lo, hi in zip(starts, ends, strict=True):
        parts.append(_segment(t, kinds, times, np.arange(lo, hi), int(seg_all[lo]), cfg))
    n_feat = len(feature_names(cfg))
    if not parts:
        parts = [(np.zeros(0, np.int64), np.zeros((0, n_feat)), np.zeros(0), np.zeros(0, np.int64))]
    tm = np.concatenate([p[0] for p in parts])
    vals = np.concatenate([p[1] for p in parts])
    mid = np.concatenate([p[2] for p in parts])
    seg = np.concatenate([p[3] for p in parts])
    hv = vals[:, IDX_HIGH_VOL] if len(vals) else np.zeros(0)
    td = vals[:, IDX_TREND_DIR] if len(vals) else np.zeros(0)
    regime = np.array([regime_of(a, b) for a, b in zip(hv, td, strict=True)], dtype=np.int32)
    return OfflineFeatures(symbol, tm.astype(np.int64), vals, regime, mid, seg.astype(np.int64))


def _segment(t: pa.Table, kinds: np.ndarray, times: np.ndarray, idx: np.ndarray, seg: int, cfg: FeatureConfig):
    k = kinds[idx]
    tob_pos = idx[k == "top_of_book"]
    bid = _col(t, "bid_price", tob_pos)
    ask = _col(t, "ask_price", tob_pos)
    two_sided = (bid > 0) & (ask > 0)
    tob_pos, bid, ask = tob_pos[two_sided], bid[two_sided], ask[two_sided]
    if cfg.row_interval_ms and len(tob_pos):
        bucket = times[tob_pos] // (cfg.row_interval_ms * 1_000_000)
        first = np.r_[True, bucket[1:] > np.maximum.accumulate(bucket)[:-1]]
        tob_pos, bid, ask = tob_pos[first], bid[first], ask[first]
    m = len(tob_pos)
    n_feat = len(feature_names(cfg))
    if m == 0:
        return np.zeros(0, np.int64), np.zeros((0, n_feat)), np.zeros(0), np.zeros(0, np.int64)
    bq = _col(t, "bid_quantity", tob_pos)
    aq = _col(t, "ask_quantity", tob_pos)
    mid = (bid + ask) * 0.5
    lm = np.log(mid)

    # Trades since the previous candidate row: row j gets trades between rows j-1 and j.
    trade_pos = idx[k == "trade"]
    row_of = np.searchsorted(tob_pos, trade_pos, side="left")
    keep = row_of < m
    row_of, trade_pos = row_of[keep], trade_pos[keep]
    price = _col(t, "price", trade_pos)
    qty = _col(t, "quantity", trade_pos)
    maker = _col(t, "buyer_is_maker", trade_pos, dtype=bool)
    n_trades = np.bincount(row_of, minlength=m).astype(np.float64)
    buy = np.bincount(row_of, weights=np.where(maker, 0.0, qty), minlength=m)
    sell = np.bincount(row_of, weights=np.where(maker, qty, 0.0), minlength=m)
    notional = np.bincount(row_of, weights=price * qty, minlength=m)
    flow = _ratio_v(buy, sell)
    nlog = np.log1p(notional)

    # Latest depth update before each row.
    depth_pos = idx[k == "depth"]
    nd = len(depth_pos)
    k1, k2 = cfg.depth_levels
    bids = t.column("bids").take(pa.array(depth_pos))
    asks = t.column("asks").take(pa.array(depth_pos))
    b1, _ = _level_sums(bids, k1, nd)
    b2, bn = _level_sums(bids, k2, nd)
    a1, _ = _level_sums(asks, k1, nd)
    a2, an = _level_sums(asks, k2, nd)
    last_depth = np.searchsorted(depth_pos, tob_pos, side="left") - 1
    have_depth = last_depth >= 0
    ld = np.maximum(last_depth, 0)
    d_imb1 = _ratio_v(b1, a1)[ld] if nd else np.zeros(m)
    d_imb2 = _ratio_v(b2, a2)[ld] if nd else np.zeros(m)
    d_notional = np.log1p(bn + an)[ld] if nd else np.zeros(m)

    r = np.zeros(m)
    r[1:] = (lm[1:] - lm[:-1]) * BPS
    rets = []
    for w in cfg.return_windows:
        x = np.full(m, np.nan)
        x[w:] = (lm[w:] - lm[:-w]) * BPS
        rets.append(x)
    vols = {}
    for w in cfg.vol_windows:
        rr = r.copy()
        rr[0] = np.nan  # return windows end at row j and hold returns j-w+1..j (returns start at row 1)
        s1 = _rolling_sum(np.nan_to_num(rr), w)
        s2 = _rolling_sum(np.nan_to_num(rr) ** 2, w)
        var = (s2 - s1 * s1 / w) / (w - 1)
        v = np.where(var > 0, np.sqrt(np.where(var > 0, var, 0.0)), 0.0)
        v[:w] = np.nan
        vols[w] = v
    short, long_ = cfg.vol_windows
    var_base = np.zeros(m)
    if m > 1:
        var_base[1:] = _ema(r[1:] * r[1:], cfg.vol_baseline_span)
    base = np.sqrt(var_base)
    with np.errstate(invalid="ignore", divide="ignore"):
        vol_ratio = np.where(base > 0, vols[short] / np.where(base > 0, base, 1.0), 1.0)
    ema_f = _ema(lm, cfg.ema_fast)
    ema_s = _ema(lm, cfg.ema_slow)
    slope = np.zeros(m)
    slope[1:] = (ema_f[1:] - ema_f[:-1]) * BPS
    tw = cfg.trend_window
    vt = vols.get(tw, np.zeros(m))
    ret_t = np.full(m, np.nan)
    ret_t[tw:] = (lm[tw:] - lm[:-tw]) * BPS
    with np.errstate(invalid="ignore", divide="ignore"):
        trend_z = np.where(vt > 0, ret_t / (np.where(vt > 0, vt, 1.0) * math.sqrt(tw)), 0.0)
    spread = (ask - bid) / mid * BPS
    cols = [
        *rets,
        vols[short],
        vols[long_],
        vol_ratio,
        slope,
        (ema_f - ema_s) * BPS,
        trend_z,
        spread,
        _ratio_v(bq, aq),
        d_imb1,
        d_imb2,
        d_notional,
        n_trades,
        flow,
        _ema(flow, cfg.flow_ema),
        _ema(nlog, cfg.notional_ema),
        (vol_ratio > cfg.high_vol_ratio).astype(np.float64),
        np.where(trend_z > cfg.trend_z, 1.0, np.where(trend_z < -cfg.trend_z, -1.0, 0.0)),
    ]
    values = np.column_stack(cols)
    emit = (np.arange(m) >= cfg.warmup_rows) & have_depth
    return times[tob_pos][emit], values[emit], mid[emit], np.full(int(emit.sum()), seg, dtype=np.int64)

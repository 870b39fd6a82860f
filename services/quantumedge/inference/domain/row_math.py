"""A feature row's values from its inputs: the one arithmetic the online and offline builders share.

Both builders aggregate events into a row's inputs their own way (per event, vectorised) and then call
RowMath.push, so the float64 bits of every value are the same whichever built the row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from quantumedge.inference.domain.feature_spec import (
    BPS,
    IDX_HIGH_VOL,
    IDX_SPREAD,
    IDX_TREND_DIR,
    FeatureConfig,
    regime_of,
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


class RowMath:
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
        bid, _, ask, _ = tob
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
        i = self._advance(lm, flow, d_imb2, nlog)
        if i < cfg.warmup_rows or not depth:
            return None
        return self._values(i, lm, tob, mid, (d_imb1, d_imb2, d_notional), float(n_trades), flow)

    def _advance(self, lm: float, flow: float, d_imb2: float, nlog: float) -> int:
        """Count the row and roll every ring and EMA forward by it (warm-up rows too); the row's index."""
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
        return i

    def _values(
        self,
        i: int,
        lm: float,
        tob: tuple[float, float, float, float],
        mid: float,
        depth: tuple,
        n_trades: float,
        flow: float,
    ) -> list[float]:
        """The values of row i in feature_names order (returns, vols, trend, book, depth, flow, regime flags)."""
        cfg = self.cfg
        lm_len = self.lm_len
        bid, bq, ask, aq = tob
        d_imb1, d_imb2, d_notional = depth
        out = [(lm - self.lm[(i - w) % lm_len]) * BPS for w in cfg.return_windows]
        vols = self._vols(i)
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
            n_trades,
            flow,
            self.flow_ema,
            self.flow_slow,
            self.notional_ema,
            1.0 if vol_ratio > cfg.high_vol_ratio else 0.0,
            1.0 if trend_z > cfg.trend_z else -1.0 if trend_z < -cfg.trend_z else 0.0,
        ]
        return out

    def _vols(self, i: int) -> dict[int, float]:
        """Sample standard deviation of the 1-row returns over each vol window ending at row i (exact sums)."""
        r_len = self.r_len
        vols = {}
        for w in self.cfg.vol_windows:
            window = [self.r[(k - 1) % r_len] for k in range(i - w + 1, i + 1)]
            s1 = math.fsum(window)
            var = (math.fsum(v * v for v in window) - s1 * s1 / w) / (w - 1)
            vols[w] = math.sqrt(var) if var > 0 else 0.0
        return vols


def make_row(symbol: str, boundary: int, tob: tuple, values: list[float]) -> FeatureRow:
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

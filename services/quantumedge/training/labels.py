"""Cost-aware triple-barrier labels: did a long decided at this row pay, with the plan execution runs?

For the row of boundary B, the decision happens at D = B + lateness (inference/domain/rowclock.py): the entry
is a market BUY at the ask in force at D (the last two-sided book before D). Its protection is what
risk attaches and execution runs: a take-profit limit at entry * (1 + tp), a stop at entry * (1 - sl),
and a time stop at D + horizon (a market SELL at the bid then). The first barrier the bid reaches
decides (the stop when both fall on the same book, which is the cautious reading). Fees: the entry
and stops pay the taker fee, the take-profit limit the maker fee.

    y = 1  when the take-profit is reached first: the move cleared the take-profit net of both fees and
           the spread paid at entry (a take-profit no larger than the costs can never be a 1);
    y = 0  when the stop or the time stop ends the trade.
    net_bps: the trade's return net of fees, whatever ended it (the backtested expectancy's input).

Rows whose decision or horizon runs past their segment (a gap, the end of the data) have no label.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from quantumedge.inference.domain.features import OfflineFeatures

BPS = 1e4


@dataclass(frozen=True)
class Barriers:
    """The trade plan a label scores; taken from the same settings risk and execution run on."""

    take_profit_bps: float
    stop_loss_bps: float
    taker_fee_bps: float
    maker_fee_bps: float
    lateness_ns: int

    @property
    def win_net_bps(self) -> float:
        """Net return of a trade that reaches its take-profit (entry at the ask, both fees)."""
        return self.take_profit_bps - self.taker_fee_bps - self.maker_fee_bps

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_settings(cls, settings) -> Barriers:  # quantumedge.settings.Settings
        lim, ex = settings.risk.limits, settings.execution
        return cls(
            take_profit_bps=float(lim.take_profit_bps),
            stop_loss_bps=float(lim.stop_loss_bps),
            taker_fee_bps=float(ex.paper_taker_fee_bps),
            maker_fee_bps=float(ex.paper_maker_fee_bps),
            lateness_ns=int(settings.inference.row_lateness_ms * 1_000_000),
        )


@dataclass
class Labels:
    rows: np.ndarray  # positions in the OfflineFeatures arrays of the labelled rows
    y: np.ndarray  # int64
    net_bps: np.ndarray  # float64
    end_ns: np.ndarray  # int64: when the label's outcome is known (for purging)
    exit_kind: np.ndarray  # int8: 1 take-profit, 2 stop, 3 time stop


class _RangeExtreme:
    """Sparse table over an array: first index in (lo, hi] where the value crosses a level, vectorised."""

    def __init__(self, values: np.ndarray, op) -> None:
        self.op = op
        self.levels = [values]
        span = 1
        while span * 2 <= len(values):
            prev = self.levels[-1]
            self.levels.append(op(prev[:-span], prev[span:]))
            span *= 2

    def first_cross(self, lo: np.ndarray, hi: np.ndarray, level: np.ndarray, crossed) -> np.ndarray:
        """Per query: smallest k with lo < k <= hi and crossed(values[k], level); hi + 1 when none."""
        pos = lo.copy()
        for lvl in range(len(self.levels) - 1, -1, -1):
            span = 1 << lvl
            table = self.levels[lvl]
            start = pos + 1
            ok = start + span - 1 <= hi
            ext = table[np.minimum(start, len(table) - 1)]
            skip = ok & ~crossed(ext, level)  # the whole block stays on the safe side: jump over it
            pos = np.where(skip, pos + span, pos)
        first = pos + 1
        base = self.levels[0]
        hit = (first <= hi) & crossed(base[np.minimum(first, len(base) - 1)], level)
        return np.where(hit, first, hi + 1)


def triple_barrier(feats: OfflineFeatures, horizon_s: float, barriers: Barriers) -> Labels:
    t, bid, ask, seg = feats.path_time_ns, feats.path_bid, feats.path_ask, feats.path_segment
    n = len(feats)
    empty = Labels(
        np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int8)
    )
    if n == 0 or len(t) < 2:
        return empty
    decide_ns = feats.time_ns + barriers.lateness_ns
    d = np.searchsorted(t, decide_ns, side="left") - 1  # the book the decision meets
    deadline = decide_ns + int(horizon_s * 1e9)
    e = np.searchsorted(t, deadline, side="left")  # the first book at or after the time stop
    ok = (d >= 0) & (e < len(t))
    ok[ok] &= (seg[d[ok]] == feats.segment[ok]) & (seg[np.minimum(e[ok], len(t) - 1)] == feats.segment[ok])
    rows = np.flatnonzero(ok)
    if not len(rows):
        return empty
    d, e = d[rows], e[rows]
    entry = ask[d]
    tp = entry * (1 + barriers.take_profit_bps / BPS)
    sl = entry * (1 - barriers.stop_loss_bps / BPS)
    k_tp = _RangeExtreme(bid, np.maximum).first_cross(d, e, tp, np.greater_equal)
    k_sl = _RangeExtreme(bid, np.minimum).first_cross(d, e, sl, np.less_equal)
    took = k_tp < np.minimum(k_sl, e + 1)
    stopped = ~took & (k_sl <= e)
    exit_price = np.where(took, tp, np.where(stopped, bid[np.minimum(k_sl, len(bid) - 1)], bid[e]))
    exit_fee = np.where(took, barriers.maker_fee_bps, barriers.taker_fee_bps)
    net = (exit_price / entry - 1.0) * BPS - barriers.taker_fee_bps - exit_fee
    k_end = np.where(took, k_tp, np.where(stopped, k_sl, e))
    kind = np.where(took, 1, np.where(stopped, 2, 3)).astype(np.int8)
    return Labels(rows, took.astype(np.int64), net, t[k_end].astype(np.int64), kind)

"""The drift guard: does the live feature distribution still look like the one the models learnt from?

The manifest keeps, per model, the training distribution of every feature (inference reads the one of
the symbol's served models): decile bin edges with each bin's share, the range the training rows
covered (0.1% and 99.9% quantiles; the guard widens it by RANGE_MARGIN of its span), and how far a
window of `window` consecutive training rows itself strays from those shares (the 99th percentile of
its PSI). Live, the guard keeps the last `window` rows
per symbol and measures, per feature, the population stability index (PSI) of the window against the
training shares and the share of the window outside the training range. It marks the symbol drifted
when, over a full enough window, some feature's out-of-range share passes `range_limit` or its PSI
passes that feature's own limit; the reason names the feature and its code (`feature_range`,
`feature_psi`).

Why a limit per feature, measured on training: rows are a second apart and slow features (volatilities,
minute-scale EMAs) wander through their range over hours, so even training's own windows concentrate in
a few bins and reach the PSI ceiling. A single PSI limit would either fire on training-like data or never.
Measured per feature, a fast feature (spread, imbalance, trade flow) gets a tight limit that real parting
passes, and a slow one a limit it cannot reach, which leaves it to the range test.
Pure logic; the service feeds it rows and reads `status`.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

EPS = 1e-4  # floor of a bin's share in the PSI (an empty bin is not an infinite shift)
DEFAULT_WINDOW = 900  # rows: 15 minutes at one row a second
PSI_MARGIN = 2.0  # live PSI must pass this multiple of what training's own windows reached
# The training range is widened by this share of its span on each side: a slow feature of a fresh run of
# the same market strays a little past the extremes one training day happened to visit.
RANGE_MARGIN = 0.10
# Reason codes (the text before ":" of DriftStatus.reason).
FEATURE_RANGE = "feature_range"
FEATURE_PSI = "feature_psi"


def psi(counts: np.ndarray, expected: np.ndarray) -> float:
    """Population stability index of a window's bin counts against the expected shares."""
    a = np.maximum(counts / max(1, counts.sum()), EPS)
    e = np.maximum(expected, EPS)
    return float(((a - e) * np.log(a / e)).sum())


def _window_psi_q99(bins_of_rows: np.ndarray, expected: np.ndarray, window: int) -> float:
    """99th percentile of the PSI of `window` consecutive rows, over training windows a quarter apart."""
    n = len(bins_of_rows)
    if n < window:
        return 0.0
    onehot = np.zeros((n + 1, len(expected)))
    onehot[np.arange(1, n + 1), bins_of_rows] = 1.0
    cum = onehot.cumsum(axis=0)
    starts = np.arange(0, n - window + 1, max(1, window // 4))
    values = [psi(cum[s + window] - cum[s], expected) for s in starts]
    return float(np.quantile(values, 0.99))


def reference(values: np.ndarray, names: list[str], bins: int = 10, window: int = DEFAULT_WINDOW) -> dict:
    """The training distribution of each feature (columns of `values`, rows in time order), as kept in the
    manifest, with the PSI limit each feature earns from training's own windows of `window` rows."""
    out = {}
    for j, name in enumerate(names):
        col = values[:, j]
        col = col[np.isfinite(col)]
        if not len(col):
            continue
        edges = np.unique(np.quantile(col, np.linspace(0, 1, bins + 1)[1:-1]))
        idx = np.searchsorted(edges, col, side="right")
        shares = np.bincount(idx, minlength=len(edges) + 1) / len(col)
        lo, hi = np.quantile(col, [0.001, 0.999])
        out[name] = {
            "edges": [float(x) for x in edges],
            "shares": [float(c) for c in shares],
            "lo": float(lo),
            "hi": float(hi),
            "window_psi_q99": _window_psi_q99(idx, shares, window),
        }
    return {"rows": len(values), "bins": bins, "window": window, "features": out}


@dataclass(frozen=True)
class DriftStatus:
    drift: bool = False
    reason: str = ""
    max_psi: float = 0.0
    psi_feature: str = ""
    out_of_range: float = 0.0
    range_feature: str = ""
    rows: int = 0


class _Feature:
    __slots__ = (
        "counts",
        "dirty",
        "edges",
        "expected",
        "floors",
        "hi",
        "lo",
        "name",
        "outside",
        "psi_limit",
        "psi_on",
        "term_n",
        "terms",
        "value",
    )

    def __init__(self, name: str, ref: dict, psi_floor: float) -> None:
        self.name = name
        self.edges = list(ref["edges"])
        self.expected = list(ref["shares"])
        self.floors = [max(e, EPS) for e in self.expected]
        span = ref["hi"] - ref["lo"]
        self.lo, self.hi = ref["lo"] - RANGE_MARGIN * span, ref["hi"] + RANGE_MARGIN * span
        self.counts = [0] * len(self.expected)
        self.outside = 0
        self.psi_on = len(self.edges) >= 3  # binary / near-constant features: the range test only
        self.psi_limit = max(psi_floor, PSI_MARGIN * float(ref.get("window_psi_q99", 0.0)))
        # The PSI's per-bin terms for a window of term_n rows: a row changes at most two bins' counts, so
        # only those terms are recomputed, and the sum is redone in bin order (the same float result).
        self.terms = [0.0] * len(self.expected)
        self.term_n = -1
        self.dirty: set[int] = set()
        self.value = 0.0

    def window_psi(self, n: int) -> float:
        """The PSI of the window's counts (n rows) against the training shares."""
        if n != self.term_n:
            bins: Iterable[int] = range(len(self.counts))
            self.term_n = n
        elif self.dirty:
            bins = self.dirty
        else:
            return self.value
        counts, floors, terms, log = self.counts, self.floors, self.terms, math.log
        for b in bins:  # inline, not a method per bin: this loop is the guard's whole cost
            a, e = counts[b] / n, floors[b]
            if a < EPS:  # max(a, EPS), without the call
                a = EPS
            terms[b] = (a - e) * log(a / e)
        self.dirty.clear()
        value = 0.0
        for t in self.terms:  # not sum(): the original loop's left-to-right float additions
            value += t
        self.value = value
        return value


class DriftGuard:
    def __init__(
        self,
        ref: dict,
        names: list[str],
        window: int = DEFAULT_WINDOW,
        min_rows: int = 120,
        psi_limit: float = 0.5,
        range_limit: float = 0.5,
    ) -> None:
        """`psi_limit` is the floor of every feature's PSI limit; `window` is used only when the reference
        does not say which window its limits were measured on."""
        feats = ref.get("features", {})
        self.cols = [(j, _Feature(n, feats[n], psi_limit)) for j, n in enumerate(names) if n in feats]
        self.window = int(ref.get("window", window))
        self.min_rows = min_rows
        self.psi_limit = psi_limit
        self.range_limit = range_limit
        self._rows: deque[list[tuple[int, bool]]] = deque()
        self.status = DriftStatus()

    def update(self, values: list[float]) -> DriftStatus:
        marks = []
        for j, f in self.cols:
            v = values[j]
            b = bisect.bisect_right(f.edges, v)  # same binning as np.searchsorted(side='right')
            out = not (f.lo <= v <= f.hi)
            f.counts[b] += 1
            f.dirty.add(b)
            f.outside += out
            marks.append((b, out))
        self._rows.append(marks)
        if len(self._rows) > self.window:
            for (b, out), (_, f) in zip(self._rows.popleft(), self.cols, strict=True):
                f.counts[b] -= 1
                f.dirty.add(b)
                f.outside -= out
        self.status = self._measure()
        return self.status

    def _measure(self) -> DriftStatus:
        n = len(self._rows)
        if not self.cols or n < self.min_rows:
            return DriftStatus(rows=n)
        best_psi, psi_name, best_oor, oor_name = 0.0, "", 0.0, ""
        over: tuple[float, str, float] | None = None  # the feature furthest past its own PSI limit
        for _, f in self.cols:
            share = f.outside / n
            if share > best_oor:
                best_oor, oor_name = share, f.name
            if f.psi_on:
                value = f.window_psi(n)
                if value > best_psi:
                    best_psi, psi_name = value, f.name
                if value >= f.psi_limit and (over is None or value / f.psi_limit > over[0] / over[2]):
                    over = (value, f.name, f.psi_limit)
        reasons = []
        if best_oor >= self.range_limit:
            reasons.append(f"{FEATURE_RANGE}: {oor_name} {best_oor:.0%} of {n} rows outside the training range")
        if over is not None:
            value, name, limit = over
            reasons.append(f"{FEATURE_PSI}: {name} PSI {value:.2f} >= its limit {limit:.2f} over {n} rows")
            best_psi, psi_name = value, name
        return DriftStatus(bool(reasons), "; ".join(reasons), best_psi, psi_name, best_oor, oor_name, n)

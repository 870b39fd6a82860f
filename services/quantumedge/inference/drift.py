"""The drift guard: does the live feature distribution still look like the one the models learnt from?

The manifest keeps, per model, the training distribution of every feature (inference reads the one of
the symbol's served models): decile bin edges with each bin's share, and the range the training rows
covered (0.1% and 99.9% quantiles). Live, the guard keeps the last `window` rows per symbol and
measures, per feature, the population stability index (PSI) of the window against the training shares
and the share of the window outside the training range. It marks the symbol drifted when, over a full
enough window, some feature's out-of-range share or PSI passes its limit; the reason names the feature.

Slow features (volatilities, EMAs) wander through their range over hours, so a window of minutes
concentrates in a few bins even on training-like data: the PSI limit is set for that (a level real
parting reaches, a calm regime does not), and the range test catches what training never saw.
Pure logic; the service feeds it rows and reads `status`.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

EPS = 1e-4  # floor of a bin's share in the PSI (an empty bin is not an infinite shift)


def reference(values: np.ndarray, names: list[str], bins: int = 10) -> dict:
    """The training distribution of each feature (columns of `values`), as kept in the manifest."""
    out = {}
    for j, name in enumerate(names):
        col = values[:, j]
        col = col[np.isfinite(col)]
        if not len(col):
            continue
        edges = np.unique(np.quantile(col, np.linspace(0, 1, bins + 1)[1:-1]))
        counts = np.bincount(np.searchsorted(edges, col, side="right"), minlength=len(edges) + 1)
        lo, hi = np.quantile(col, [0.001, 0.999])
        out[name] = {
            "edges": [float(x) for x in edges],
            "shares": [float(c) / len(col) for c in counts],
            "lo": float(lo),
            "hi": float(hi),
        }
    return {"rows": len(values), "bins": bins, "features": out}


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
    __slots__ = ("counts", "edges", "expected", "hi", "lo", "name", "outside", "psi_on")

    def __init__(self, name: str, ref: dict) -> None:
        self.name = name
        self.edges = list(ref["edges"])
        self.expected = list(ref["shares"])
        self.lo, self.hi = ref["lo"], ref["hi"]
        self.counts = [0] * len(self.expected)
        self.outside = 0
        self.psi_on = len(self.edges) >= 3  # binary / near-constant features: the range test only


class DriftGuard:
    def __init__(
        self,
        ref: dict,
        names: list[str],
        window: int = 900,
        min_rows: int = 120,
        psi_limit: float = 4.0,
        range_limit: float = 0.5,
    ) -> None:
        feats = ref.get("features", {})
        self.cols = [(j, _Feature(n, feats[n])) for j, n in enumerate(names) if n in feats]
        self.window = window
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
            f.outside += out
            marks.append((b, out))
        self._rows.append(marks)
        if len(self._rows) > self.window:
            for (b, out), (_, f) in zip(self._rows.popleft(), self.cols, strict=True):
                f.counts[b] -= 1
                f.outside -= out
        self.status = self._measure()
        return self.status

    def _measure(self) -> DriftStatus:
        n = len(self._rows)
        if not self.cols or n < self.min_rows:
            return DriftStatus(rows=n)
        best_psi, psi_name, best_oor, oor_name = 0.0, "", 0.0, ""
        for _, f in self.cols:
            share = f.outside / n
            if share > best_oor:
                best_oor, oor_name = share, f.name
            if f.psi_on:
                psi = 0.0
                for c, e in zip(f.counts, f.expected, strict=True):
                    a, e = max(c / n, EPS), max(e, EPS)
                    psi += (a - e) * math.log(a / e)
                if psi > best_psi:
                    best_psi, psi_name = psi, f.name
        reasons = []
        if best_oor >= self.range_limit:
            reasons.append(f"feature_range: {oor_name} {best_oor:.0%} of {n} rows outside the training range")
        if best_psi >= self.psi_limit:
            reasons.append(f"feature_psi: {psi_name} PSI {best_psi:.2f} >= {self.psi_limit:g} over {n} rows")
        return DriftStatus(bool(reasons), "; ".join(reasons), best_psi, psi_name, best_oor, oor_name, n)

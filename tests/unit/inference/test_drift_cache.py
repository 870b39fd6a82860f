"""The drift guard's cached PSI terms give the very figures of the full recomputation it replaced (issue 14:
faster, not different). The reference below is the pre-cache `_measure` loop, kept here as the oracle."""

from __future__ import annotations

import math

import numpy as np

from quantumedge.inference.domain.drift import EPS, DriftGuard, DriftStatus, reference


def _old_measure(guard: DriftGuard) -> DriftStatus:
    """The recomputation over every bin on every row, as drift.py did it before the cache."""
    n = len(guard._rows)
    if not guard.cols or n < guard.min_rows:
        return DriftStatus(rows=n)
    best_psi, psi_name, best_oor, oor_name = 0.0, "", 0.0, ""
    over = None
    for _, f in guard.cols:
        share = f.outside / n
        if share > best_oor:
            best_oor, oor_name = share, f.name
        if f.psi_on:
            value = 0.0
            for c, e in zip(f.counts, f.expected, strict=True):
                a, e = max(c / n, EPS), max(e, EPS)
                value += (a - e) * math.log(a / e)
            if value > best_psi:
                best_psi, psi_name = value, f.name
            if value >= f.psi_limit and (over is None or value / f.psi_limit > over[0] / over[2]):
                over = (value, f.name, f.psi_limit)
    reasons = []
    if best_oor >= guard.range_limit:
        reasons.append(f"feature_range: {oor_name} {best_oor:.0%} of {n} rows outside the training range")
    if over is not None:
        value, name, limit = over
        reasons.append(f"feature_psi: {name} PSI {value:.2f} >= its limit {limit:.2f} over {n} rows")
        best_psi, psi_name = value, name
    return DriftStatus(bool(reasons), "; ".join(reasons), best_psi, psi_name, best_oor, oor_name, n)


def test_cached_psi_equals_the_full_recomputation_row_for_row() -> None:
    rng = np.random.default_rng(14)
    names = ["fast", "slow", "binary", "shifting"]
    train = np.column_stack(
        [
            rng.normal(size=4000),
            np.cumsum(rng.normal(size=4000)) * 0.05,
            rng.integers(0, 2, size=4000).astype(float),
            rng.normal(size=4000),
        ]
    )
    guard = DriftGuard(reference(train, names, window=150), names, min_rows=40, psi_limit=0.05)
    live = np.column_stack(
        [
            rng.normal(size=1200),
            np.cumsum(rng.normal(size=1200)) * 0.05,
            rng.integers(0, 2, size=1200).astype(float),
            rng.normal(size=1200) + np.linspace(0, 4, 1200),  # parts from training: PSI and range fire
        ]
    )
    live[300:320, 0] = np.nan  # a non-finite value lands in the top bin and out of range, as before
    fired = 0
    for row in live.tolist():
        got = guard.update(row)
        want = _old_measure(guard)
        assert got == want  # dataclass equality: every float bit for bit, the reason text too
        fired += got.drift
    assert fired > 0  # the comparison covered drifted verdicts, not only quiet ones
    assert guard.status.rows == 150

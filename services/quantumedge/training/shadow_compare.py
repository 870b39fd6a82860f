"""Promoted vs shadow: which of two models' live predictions the market proved right. Pure domain code.

Both models scored the same rows (inference/shadow.py). Each row's realised outcome is the triple-barrier
label training uses (labels.py) with the barriers the model's manifest entry was trained on, so a model is
judged on the exact question it was trained to answer. Figures per model on the rows both scored and the
market settled: log loss and Brier against the outcomes, expected calibration error (gate.ece), and the
would-be decisions: the recorded signals replayed through risk's engine and paper execution
(backtest/simulation.py) with the round trips they would have made, net of fees.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from quantumedge.training.gate import ece

EPS = 1e-6
# Log loss closer than this is a tie: neither model is named better on noise.
TIE_LOG_LOSS = 1e-4


@dataclass(frozen=True)
class Figures:
    rows: int
    log_loss: float
    brier: float
    ece: float
    mean_p: float
    base_rate: float
    decisions: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def figures(y: np.ndarray, p: np.ndarray) -> Figures:
    """Calibration and loss of predictions `p` against outcomes `y` (0/1)."""
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    if len(y) != len(p) or not len(y):
        raise ValueError(f"need as many outcomes as predictions, and some: {len(y)} vs {len(p)}")
    return Figures(
        rows=len(y),
        log_loss=float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
        brier=float(np.mean((p - y) ** 2)),
        ece=float(ece(y, p)),
        mean_p=float(p.mean()),
        base_rate=float(y.mean()),
    )


def join(
    label_time_ns: np.ndarray,
    y: np.ndarray,
    a_time_ns: np.ndarray,
    a_p: np.ndarray,
    b_time_ns: np.ndarray,
    b_p: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, p_a, p_b) on the rows that have a label and a prediction of both models (rows keyed by time)."""
    common = np.intersect1d(np.intersect1d(label_time_ns, a_time_ns), b_time_ns)

    def at(times: np.ndarray, values: np.ndarray) -> np.ndarray:
        order = np.argsort(times, kind="stable")
        return np.asarray(values)[order][np.searchsorted(np.asarray(times)[order], common)]

    return at(label_time_ns, y), at(a_time_ns, a_p), at(b_time_ns, b_p)


def better(promoted: Figures, shadow: Figures) -> str:
    """'shadow', 'promoted' or 'tie': the lower log loss against realised outcomes wins."""
    diff = shadow.log_loss - promoted.log_loss
    if abs(diff) < TIE_LOG_LOSS:
        return "tie"
    return "shadow" if diff < 0 else "promoted"


def would_be_decisions(settings, events: Iterable, signals: Sequence) -> dict:
    """Replay recorded signals through risk's engine and paper execution on the same market events.

    `settings` are the services' (judged as the gate judges: gate.judging_settings); `events` the market in
    time order; `signals` one model's recorded signals. A row's signal is the recorded one, its creation time
    the replay's clock (the model is judged, not the live latency)."""
    from quantumedge.backtest.simulation import Backtest, Recorded
    from quantumedge.backtest.trades import TradeBook, expectancy
    from quantumedge.inference.models import ModelSet
    from quantumedge.training.gate import judging_settings

    by_row = {(s.symbol, s.event_time_ns): s for s in signals}

    def source(row, now_ns: int):
        recorded = by_row.get((row.symbol, row.time_ns))
        if recorded is None:
            return None
        signal = type(recorded)()
        signal.CopyFrom(recorded)
        signal.created_time_ns = now_ns
        return signal

    book, seen = TradeBook(), Recorded()
    Backtest(judging_settings(settings), ModelSet(), [book, seen], signal_source=source).run(events)
    figs = expectancy(book.trades)
    approved = [d for d in seen.decisions if d.approved]
    refused: dict[str, int] = {}
    for d in seen.decisions:
        if not d.approved and d.reasons:
            code = d.reasons[0].split(":", 1)[0]  # reason codes come before the colon
            refused[code] = refused.get(code, 0) + 1
    return {
        "decisions": len(seen.decisions),
        "approved": len(approved),
        "round_trips": figs["trades"],
        "expectancy_bps": figs["expectancy_bps"],
        "win_rate": figs["win_rate"],
        "net_pnl": figs["net_pnl"],
        "refused_by": refused,
    }

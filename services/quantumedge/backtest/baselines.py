"""What a strategy is measured against: random entries with the same exits, and buy-and-hold."""

from __future__ import annotations

import random

from quantumedge.inference.domain.features import FeatureRow
from quantumedge.inference.signals import build_signal
from quantumedge.v1 import signal_pb2


class RandomEntries:
    """A signal source that asks for a long on a random `rate` of the rows (seeded) and is neutral
    otherwise, so exits are the plan's own (take-profit, stop, time stop on `horizon`). It also notes
    the first and last mid per symbol for buy-and-hold."""

    def __init__(self, horizon: int, rate: float, seed: int = 0) -> None:
        self.horizon = horizon
        self.rate = rate
        self.rng = random.Random(seed)
        self.first_mid: dict[str, float] = {}
        self.last_mid: dict[str, float] = {}

    def __call__(self, row: FeatureRow, now_ns: int) -> signal_pb2.Signal:
        self.first_mid.setdefault(row.symbol, row.mid)
        self.last_mid[row.symbol] = row.mid
        expected = 1_000.0 if self.rng.random() < self.rate else 0.0
        return build_signal(row, (self.horizon,), [0.5], [expected], ("random",), {self.horizon: 1.0}, now_ns)


def buy_and_hold(equity, run, settings) -> float:
    """PnL of putting risk_fraction of the starting equity in each symbol at its first mid, sold at its last,
    paying the taker fee both ways."""
    source = run.signal_source
    fee = settings.execution.paper_taker_fee_bps / 1e4
    notional = settings.execution.starting_equity * settings.risk.limits.risk_fraction
    pnl = 0.0
    for symbol, first in getattr(source, "first_mid", {}).items():
        last = source.last_mid[symbol]
        pnl += notional * (last / first - 1) - notional * fee - notional * last / first * fee
    return pnl

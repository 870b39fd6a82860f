"""The oracle: a strategy that knows the synthetic market's planted signal.

At each decided row it reads the latent order-flow pressure in force at the decision time and prices
the long of every horizon exactly as the market makes it: the expected move over the horizon, less
the fees of the round trip and half the spread. Its signals go through the same risk, execution and
fees as the models' (backtest/simulation.py), so "the model recovers half the oracle's net PnL" compares
two strategies on one plan, one of which cannot do better than knowing the truth.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from quantumedge.inference.domain.features import FeatureRow
from quantumedge.inference.signals import build_signal
from quantumedge.ingest.synthetic import SyntheticMarket
from quantumedge.v1 import signal_pb2


class OracleSignals:
    def __init__(
        self,
        market: SyntheticMarket,
        horizons: tuple[int, ...],
        weights: Mapping[int, float],
        cost_bps: float,
        lateness_ns: int,
    ) -> None:
        if not market.keep_latent:
            raise ValueError("the oracle needs SyntheticMarket(keep_latent=True)")
        self.market = market
        self.horizons = tuple(horizons)
        self.weights = weights
        self.cost_bps = cost_bps
        self.lateness_ns = lateness_ns

    def __call__(self, row: FeatureRow, now_ns: int) -> signal_pb2.Signal:
        z = self.market.latent(row.symbol, row.time_ns + self.lateness_ns)
        expected, p_up = [], []
        for h in self.horizons:
            e = self.market.expected_move_bps(z, h * 60.0) - self.cost_bps - row.spread_bps / 2
            sd = self.market.volatility_bps(h * 60.0)
            expected.append(e)
            p_up.append(0.5 * (1 + math.erf(e / (sd * math.sqrt(2)))))
        return build_signal(
            row, self.horizons, p_up, expected, tuple("oracle" for _ in self.horizons), self.weights, now_ns
        )

"""A feature row and a symbol's models in, a Signal out: the one place a Signal is built from a row.

The inference service and the backtester both call it, so a backtest trades on exactly the signals the
service would publish for the same events.
"""

from __future__ import annotations

from collections.abc import Mapping

from quantumedge.inference.features import FeatureRow
from quantumedge.inference.models import SymbolPredictor, ensemble
from quantumedge.v1 import signal_pb2


def signal_for_row(
    row: FeatureRow, predictor: SymbolPredictor, weights: Mapping[int, float], created_time_ns: int
) -> signal_pb2.Signal:
    p_up = predictor.predict_row(row.values)
    edge, confidence = ensemble(p_up, predictor.horizons, weights)
    return signal_pb2.Signal(
        # Derived from the input: a redelivered event gives the same id, so risk can deduplicate.
        signal_id=f"{row.symbol}-{row.time_ns}",
        symbol=row.symbol,
        event_time_ns=row.time_ns,
        created_time_ns=created_time_ns,
        predictions=[
            signal_pb2.HorizonPrediction(horizon=h, p_up=p, model_version=v)
            for h, p, v in zip(predictor.horizons, p_up, predictor.versions, strict=True)
        ],
        edge=edge,
        confidence=confidence,
        regime=row.regime,
        mid_price=row.mid,
        spread_bps=row.spread_bps,
    )

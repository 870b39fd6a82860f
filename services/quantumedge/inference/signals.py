"""A feature row and a symbol's models in, a Signal out: the one place a Signal is built from a row.

The inference service and the backtester both call it, so a backtest trades on exactly the signals the
service would publish for the same events.
"""

from __future__ import annotations

from collections.abc import Mapping

from quantumedge.inference.domain.drift import DriftGuard, DriftStatus
from quantumedge.inference.domain.features import DEFAULT_CONFIG, IDX_VOL_SHORT, FeatureRow
from quantumedge.inference.models import ModelSet, SymbolPredictor, ensemble
from quantumedge.v1 import signal_pb2

ROW_INTERVAL_S = DEFAULT_CONFIG.row_interval_ms / 1000.0


def build_signal(
    row: FeatureRow,
    horizons: tuple[int, ...],
    p_up: list[float],
    expected: list[float],
    versions: tuple[str, ...],
    weights: Mapping[int, float],
    created_time_ns: int,
    drift: DriftStatus | None = None,
) -> signal_pb2.Signal:
    edge, confidence = ensemble(p_up, horizons, weights)
    return signal_pb2.Signal(
        # Derived from the input: a redelivered event gives the same id, so risk can deduplicate.
        signal_id=f"{row.symbol}-{row.time_ns}",
        symbol=row.symbol,
        event_time_ns=row.time_ns,
        created_time_ns=created_time_ns,
        predictions=[
            signal_pb2.HorizonPrediction(horizon=h, p_up=p, model_version=v, expected_return_bps=e)
            for h, p, v, e in zip(horizons, p_up, versions, expected, strict=True)
        ],
        edge=edge,
        confidence=confidence,
        regime=row.regime,
        mid_price=row.mid,
        spread_bps=row.spread_bps,
        drift=bool(drift and drift.drift),
        drift_reason=drift.reason if drift else "",
        drift_psi=drift.max_psi if drift else 0.0,
        volatility_bps=row.values[IDX_VOL_SHORT] if len(row.values) > IDX_VOL_SHORT else 0.0,
        row_interval_s=ROW_INTERVAL_S,
    )


def signal_for_row(
    row: FeatureRow,
    predictor: SymbolPredictor,
    weights: Mapping[int, float],
    created_time_ns: int,
    drift: DriftStatus | None = None,
) -> signal_pb2.Signal:
    p_up = predictor.predict_row(row.values)
    return build_signal(
        row,
        predictor.horizons,
        p_up,
        predictor.expected_returns(p_up),
        predictor.versions,
        weights,
        created_time_ns,
        drift,
    )


def drift_guards(models: ModelSet, names: list[str], cfg) -> dict[str, DriftGuard]:
    """One drift guard per served symbol, on the training distribution its served models keep.
    `cfg` is the InferenceSettings (window and limits)."""
    out = {}
    for (symbol, _h), served in sorted(models.served.items()):
        ref = served.entry.drift_reference
        if symbol not in out and ref and symbol in models.predictors:
            out[symbol] = DriftGuard(
                ref,
                names,
                window=cfg.drift_window_rows,
                min_rows=cfg.drift_min_rows,
                psi_limit=cfg.drift_psi_limit,
                range_limit=cfg.drift_range_limit,
            )
    return out

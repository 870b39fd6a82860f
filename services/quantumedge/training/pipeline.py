"""Train, validate, calibrate, export and register models for symbols x horizons.

The registered model of a symbol x horizon is the model of the LAST walk-forward fold (trained on
every row before the last block, minus the purge gap). Its Platt calibration is fitted on the first
half of the last block, and the second half (after another purge gap) is the untouched holdout on
which calibrated metrics and the ONNX-vs-XGBoost parity are measured. Nothing is fitted on data
after the rows it is evaluated on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import xgboost as xgb

from quantumedge.inference.features import FeatureConfig, OfflineFeatures, make_schema
from quantumedge.inference.registry import ModelEntry, Registry
from quantumedge.training import dataset, model

DEFAULT_HORIZONS = (1, 5, 30)


class TrainingError(RuntimeError):
    """Training cannot produce a trustworthy model; the message says which symbol x horizon and why."""


@dataclass(frozen=True)
class TrainConfig:
    horizons: tuple[int, ...] = DEFAULT_HORIZONS
    dead_band_bps: float = 0.0
    folds: int = 4
    purge: int | None = None  # rows; None = horizon + the feature warm-up (longest look-back)
    params: model.ModelParams = field(default_factory=model.ModelParams)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    max_parity: float = 1e-5
    min_rows: int = 500

    def purge_rows(self, horizon: int) -> int:
        return self.purge if self.purge is not None else horizon + self.features.warmup_rows


@dataclass
class TrainResult:
    symbol: str
    horizon: int
    clf: xgb.XGBClassifier
    platt: model.Platt
    onnx: bytes
    metrics: dict[str, Any]
    parity_max_abs_diff: float
    raw_parity_max_abs_diff: float
    meta: dict[str, Any]
    holdout_x: np.ndarray
    entry: ModelEntry | None = None


def train_one(
    feats: OfflineFeatures,
    horizon: int,
    cfg: TrainConfig,
    data_fingerprint: str,
    step: Callable[[str], None] = lambda _msg: None,
) -> TrainResult:
    symbol = feats.symbol
    schema = make_schema(cfg.features)
    data = dataset.label(feats, horizon, cfg.dead_band_bps)
    if len(data.y) < cfg.min_rows:
        raise TrainingError(
            f"{symbol} h{horizon}: only {len(data.y)} labelled rows (need {cfg.min_rows}); record or generate more data"
        )
    purge = cfg.purge_rows(horizon)
    folds = dataset.walk_forward(len(feats), data, horizon, cfg.folds, purge)
    fold_scores = []
    clf = None
    for fold in folds:
        if len(fold.train) < cfg.min_rows // 2 or len(fold.test) == 0 or len(np.unique(data.y[fold.train])) < 2:
            raise TrainingError(
                f"{symbol} h{horizon}: fold {fold.index} has {len(fold.train)} training and {len(fold.test)} test rows"
            )
        clf = model.fit(data.X[fold.train], data.y[fold.train], cfg.params)
        p = 1.0 / (1.0 + np.exp(-model.margin(clf, data.X[fold.test])))
        s = model.score(data.y[fold.test], p)
        s.extra = {"fold": fold.index, "n_train": len(fold.train)}
        fold_scores.append(s)
        step(f"{symbol} h{horizon} fold {fold.index}: AUC {s.auc:.4f}")
    assert clf is not None
    calib, hold = dataset.split_holdout(data, folds[-1].test, horizon, purge)
    if len(calib) == 0 or len(hold) == 0:
        raise TrainingError(f"{symbol} h{horizon}: the last fold is too small to calibrate and hold out")
    platt = model.fit_platt(model.margin(clf, data.X[calib]), data.y[calib])
    m_hold = model.margin(clf, data.X[hold])
    raw = model.score(data.y[hold], 1.0 / (1.0 + np.exp(-m_hold)))
    cal = model.score(data.y[hold], platt.apply(m_hold))
    step(f"{symbol} h{horizon}: calibrated (a={platt.a:.3f}, b={platt.b:.3f})")

    metadata = {
        "quantumedge.symbol": symbol,
        "quantumedge.horizon": str(horizon),
        "quantumedge.feature_schema_hash": schema.hash,
        "quantumedge.training_data_fingerprint": data_fingerprint,
        "quantumedge.calibration": f"platt a={platt.a!r} b={platt.b!r}",
    }
    onnx_bytes = model.to_onnx(clf, schema.size, platt, f"{symbol}_h{horizon}", metadata)
    parity = model.parity(onnx_bytes, clf, platt, data.X[hold])
    raw_parity = model.parity(
        model.to_onnx(clf, schema.size, model.Platt(), "raw", {}), clf, model.Platt(), data.X[hold]
    )
    step(f"{symbol} h{horizon}: ONNX vs XGBoost max |dp| = {parity:.2e} (uncalibrated {raw_parity:.2e})")

    mean = {k: round(float(np.mean([getattr(s, k) for s in fold_scores])), 6) for k in ("auc", "log_loss", "brier")}
    metrics = {
        "folds": [s.to_dict() for s in fold_scores],
        "mean": mean,
        "holdout": {"raw": raw.to_dict(), "calibrated": cal.to_dict()},
    }
    meta = {
        "training_data_fingerprint": data_fingerprint,
        "calibration": {
            "method": "platt",
            "a": platt.a,
            "b": platt.b,
            "on": "xgboost margin",
            "fitted_rows": len(calib),
            "applied": "inside the ONNX graph (p_up output is calibrated)",
        },
        "metrics": metrics,
        "params": {**asdict(cfg.params), "folds": cfg.folds, "purge_rows": purge},
        "label": {
            "horizon_rows": horizon,
            "row_interval_ms": cfg.features.row_interval_ms,
            "dead_band_bps": cfg.dead_band_bps,
            "dead_band_rows": "dropped",
            "definition": "1 if log(mid[t+h]/mid[t]) > dead band, 0 if < -dead band",
        },
        "parity_max_abs_diff": parity,
    }
    return TrainResult(symbol, horizon, clf, platt, onnx_bytes, metrics, parity, raw_parity, meta, data.X[hold])


def register(result: TrainResult, registry: Registry, cfg: TrainConfig, promote: bool) -> ModelEntry:
    if not (result.parity_max_abs_diff <= cfg.max_parity) or math.isnan(result.parity_max_abs_diff):
        raise TrainingError(
            f"{result.symbol} h{result.horizon}: ONNX and XGBoost disagree by {result.parity_max_abs_diff:.3e} "
            f"(> {cfg.max_parity:g}); not registering"
        )
    schema = make_schema(cfg.features)
    result.entry = registry.register(
        result.symbol, result.horizon, result.onnx, result.meta, schema.to_dict(), promote=promote
    )
    return result.entry


def train_symbols(
    features: dict[str, OfflineFeatures],
    cfg: TrainConfig,
    registry: Registry | None,
    promote: bool = False,
    step: Callable[[str], None] = lambda _msg: None,
) -> list[TrainResult]:
    """Train every symbol x horizon; register each one whose parity check passes (when a registry is given)."""
    schema = make_schema(cfg.features)
    results = []
    for symbol in sorted(features):
        feats = features[symbol]
        fp = dataset.fingerprint(feats, schema.hash)
        for h in cfg.horizons:
            res = train_one(feats, h, cfg, fp, step)
            if registry is not None:
                register(res, registry, cfg, promote)
            results.append(res)
    return results

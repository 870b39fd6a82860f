"""Train, validate, gate, export and register models for symbols x horizons (minutes).

Time is cut in two: the walk-forward region and, after a purge and an embargo, the held-out tail
(`holdout_fraction` of the span). Labels are cost-aware triple barriers (labels.py) measured from each
row's decision time; a label "ends" when its outcome is known.

  * Walk-forward (the gate's out-of-sample figures): the region is cut into `folds + 1` blocks; fold k
    tests on block k with a model fitted on earlier rows whose labels end before the block starts and
    that lie more than the embargo before it (no label overlaps the test, no feature window straddles
    it). Its Platt calibration is fitted on the last `calib_fraction` of that training span (purged the
    same way), so every scored prediction is calibrated out of sample.
  * The registered model is fitted the same way on the whole region; the held-out tail scores it and
    backtests it (gate.holdout_backtest). Nothing is fitted on data at or after the rows it is judged on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import xgboost as xgb

from quantumedge.inference.domain import drift as drift_ref
from quantumedge.inference.domain.features import FeatureConfig, OfflineFeatures, make_schema
from quantumedge.inference.registry import ModelEntry, Registry
from quantumedge.training import gate, model
from quantumedge.training.labels import Barriers, Labels, triple_barrier

DEFAULT_HORIZONS = (1, 5, 30)  # minutes


class TrainingError(RuntimeError):
    """Training cannot produce a trustworthy model; the message says which symbol x horizon and why."""


class UnlearnableError(TrainingError):
    """The data leaves nothing to learn for this symbol x horizon (one outcome nearly always): a refusal
    with its figure, like the gate's, not a failure of the run. The message starts with its code."""


MIN_CLASS_ROWS = 50  # labelled rows of each outcome a model needs before it is worth fitting
MIN_CLASS_SHARE = 0.01  # and at least this share of them: rarer outcomes leave trees with no split


@dataclass(frozen=True)
class TrainConfig:
    barriers: Barriers
    horizons: tuple[int, ...] = DEFAULT_HORIZONS
    folds: int = 3
    holdout_fraction: float = 0.2
    calib_fraction: float = 0.5
    embargo_s: float | None = None  # None = the horizon
    params: model.ModelParams = field(default_factory=model.ModelParams)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    gate: gate.GateConfig = field(default_factory=gate.GateConfig)
    max_parity: float = 1e-5
    min_rows: int = 500

    def embargo_ns(self, horizon: int) -> int:
        return int((self.embargo_s if self.embargo_s is not None else horizon * 60.0) * 1e9)


@dataclass
class TrainResult:
    symbol: str
    horizon: int
    clf: xgb.XGBClassifier
    platt: model.Platt
    onnx: bytes
    metrics: dict[str, Any]
    parity_max_abs_diff: float
    meta: dict[str, Any]
    holdout_x: np.ndarray
    holdout_start_ns: int
    entry: ModelEntry | None = None

    @property
    def gate(self) -> dict[str, Any]:
        return self.meta["gate"]

    @property
    def passed(self) -> bool:
        return self.meta["gate"]["passed"] is True


@dataclass
class _Data:
    t: np.ndarray
    end: np.ndarray
    X: np.ndarray
    y: np.ndarray
    net: np.ndarray


def _before(d: _Data, cut_ns: int, embargo_ns: int, within: np.ndarray) -> np.ndarray:
    """Rows of `within` usable to fit for a test starting at cut: label known before it, embargoed."""
    return within[(d.end[within] < cut_ns) & (d.t[within] < cut_ns - embargo_ns)]


def _fit_calibrated(d: _Data, train: np.ndarray, cfg: TrainConfig, embargo_ns: int):
    if len(train) < cfg.min_rows // 2 or len(np.unique(d.y[train])) < 2:
        return None
    lo, hi = d.t[train[0]], d.t[train[-1]]
    cut = int(hi - (hi - lo) * cfg.calib_fraction)
    calib = train[d.t[train] >= cut]
    fit = _before(d, cut, embargo_ns, train)
    if len(fit) < cfg.min_rows // 4 or len(calib) < 50 or len(np.unique(d.y[fit])) < 2:
        return None
    clf = model.fit(d.X[fit], d.y[fit], cfg.params)
    platt = model.fit_platt(model.margin(clf, d.X[calib]), d.y[calib])
    return clf, platt, float(d.y[train].mean())


def _scores(y: np.ndarray, p: np.ndarray, base: np.ndarray) -> dict[str, float]:
    s, b = model.score(y, p), model.score(y, base)
    return {"log_loss": s.log_loss, "brier": s.brier, "auc": s.auc, "base_log_loss": b.log_loss, "base_brier": b.brier}


def walk_forward(d: _Data, region: np.ndarray, cfg: TrainConfig, embargo_ns: int) -> dict[str, Any]:
    """Pooled out-of-sample figures of purged, embargoed, calibrated walk-forward folds."""
    bounds = np.linspace(d.t[region[0]], d.t[region[-1]] + 1, cfg.folds + 2).astype(np.int64)
    ys, ps, bs, nets, folds = [], [], [], [], []
    for k in range(1, cfg.folds + 1):
        test = region[(d.t[region] >= bounds[k]) & (d.t[region] < bounds[k + 1])]
        fitted = _fit_calibrated(d, _before(d, int(bounds[k]), embargo_ns, region), cfg, embargo_ns)
        if fitted is None or not len(test):
            continue
        clf, platt, base = fitted
        p = platt.apply(model.margin(clf, d.X[test]))
        ys.append(d.y[test])
        nets.append(d.net[test])
        ps.append(p)
        bs.append(np.full(len(test), base))
        folds.append({"fold": k, "n": len(test), **_scores(d.y[test], p, bs[-1])})
    if not folds:
        # Say which is short: rows, or take-profits (barriers too wide for the horizon label all rows 0).
        raise UnlearnableError(
            f"walk_forward: no walk-forward fold has enough rows of both outcomes to fit and calibrate "
            f"({len(region)} rows, {int(d.y[region].sum())} take-profit first): the gate cannot judge a model"
        )
    y, p, b = np.concatenate(ys), np.concatenate(ps), np.concatenate(bs)
    pooled = _scores(y, p, b)
    return {
        "folds": folds,
        "pooled": {**pooled, "ece": gate.ece(y, p), "n": len(y), "base_rate": float(y.mean())},
        "return_curve": return_curve(p, np.concatenate(nets)),
    }


def return_curve(p: np.ndarray, net_bps: np.ndarray, max_knots: int = 40) -> dict[str, list[float]]:
    """Expected net return of the trade as a non-decreasing function of the calibrated p, fitted out of
    sample (isotonic regression of each row's realised net return on its walk-forward prediction).

    The time stop's outcome depends on the signal too, so p * win + (1 - p) * mean loss would misprice
    the trades a strong signal enters; this curve prices them from what such trades returned."""
    from sklearn.isotonic import IsotonicRegression

    order = np.argsort(p, kind="stable")
    iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(p[order], net_bps[order])
    grid = np.unique(np.quantile(p, np.linspace(0.0, 1.0, max_knots)))
    return {"p": [float(v) for v in grid], "net_bps": [float(v) for v in iso.predict(grid)]}


def train_one(
    feats: OfflineFeatures,
    horizon: int,
    cfg: TrainConfig,
    data_fingerprint: str,
    source: dict[str, Any],
    backtest: Callable[[ModelEntry, bytes, int], dict[str, float]] | None = None,
    step: Callable[[str], None] = lambda _msg: None,
) -> TrainResult:
    # The steps, each in its own helper: label (or refuse), cut walk-forward region and holdout, score the
    # walk-forward folds, fit the registered model on the region, score and export it, then gate it.
    symbol = feats.symbol
    schema = make_schema(cfg.features)
    lab = _labelled(feats, horizon, cfg)
    d = _Data(feats.time_ns[lab.rows], lab.end_ns, feats.values[lab.rows], lab.y, lab.net_bps)
    embargo = cfg.embargo_ns(horizon)
    region, hold, hold_start = _cut_holdout(feats, d, cfg, embargo, horizon)
    wf = _walk_forward_named(d, region, cfg, embargo, f"{symbol} h{horizon}")
    pooled = wf["pooled"]
    step(f"{symbol} h{horizon}: walk-forward log loss {pooled['log_loss']:.4f} (base {pooled['base_log_loss']:.4f})")
    clf, platt, base = _fit_registered(d, region, cfg, embargo, f"{symbol} h{horizon}")
    p_hold = platt.apply(model.margin(clf, d.X[hold]))
    holdout = {
        **_scores(d.y[hold], p_hold, np.full(len(hold), base)),
        "n": len(hold),
        "ece": gate.ece(d.y[hold], p_hold),
    }
    label = _label_spec(cfg, horizon, d, region, wf)
    metadata = {
        "quantumedge.symbol": symbol,
        "quantumedge.horizon_min": str(horizon),
        "quantumedge.feature_schema_hash": schema.hash,
        "quantumedge.training_data_fingerprint": data_fingerprint,
        "quantumedge.calibration": f"platt a={platt.a!r} b={platt.b!r}",
    }
    onnx_bytes = model.to_onnx(clf, schema.size, platt, f"{symbol}_h{horizon}", metadata)
    parity = model.parity(onnx_bytes, clf, platt, d.X[hold])
    train_rows = feats.time_ns < hold_start
    meta = {
        "training_data_fingerprint": data_fingerprint,
        "calibration": {"method": "platt", "a": platt.a, "b": platt.b, "on": "xgboost margin"},
        "metrics": {"walk_forward": wf, "holdout": holdout},
        "params": {**asdict(cfg.params), "folds": cfg.folds, "embargo_s": embargo / 1e9},
        "label": label,
        "parity_max_abs_diff": parity,
        "data_source": {**source, "holdout_from_ns": hold_start},
        "drift_reference": drift_ref.reference(feats.values[train_rows], list(schema.names)),
    }
    figures = _gate_figures(wf, holdout)
    if backtest is not None:
        candidate = ModelEntry(
            symbol, horizon, "candidate", "", "", schema.hash, schema.size, label=label,
            drift_reference=meta["drift_reference"],
        )  # fmt: skip
        figures.update(backtest(candidate, onnx_bytes, hold_start))
        step(f"{symbol} h{horizon}: held-out backtest {figures['holdout_trades']} trades")
    failures = gate.judge(figures, cfg.gate)
    meta["gate"] = {"passed": not failures, "failures": failures, "figures": _finite(figures)}
    return TrainResult(symbol, horizon, clf, platt, onnx_bytes, meta["metrics"], parity, meta, d.X[hold], hold_start)


def _labelled(feats: OfflineFeatures, horizon: int, cfg: TrainConfig) -> Labels:
    """Triple-barrier labels, refused when too few rows or one outcome (nearly) never happens."""
    symbol = feats.symbol
    lab = triple_barrier(feats, horizon * 60.0, cfg.barriers)
    if len(lab.rows) < cfg.min_rows:
        raise TrainingError(
            f"{symbol} h{horizon}: only {len(lab.rows)} labelled rows (need {cfg.min_rows}); "
            "record or generate more data (a horizon needs its own length of data after each row)"
        )
    wins = int(lab.y.sum())
    rare = min(wins, len(lab.y) - wins)
    if rare < MIN_CLASS_ROWS or rare < MIN_CLASS_SHARE * len(lab.y):
        raise UnlearnableError(
            f"base_rate: {symbol} h{horizon}: {wins} take-profits in {len(lab.y)} labelled rows "
            f"({wins / len(lab.y):.2%}); a take-profit of {cfg.barriers.take_profit_bps:g} bp is "
            f"{'hardly ever' if wins == rare else 'almost always'} reached within {horizon} min"
        )
    return lab


def _cut_holdout(
    feats: OfflineFeatures, d: _Data, cfg: TrainConfig, embargo: int, horizon: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """(walk-forward region rows, held-out rows, holdout start ns): the tail `holdout_fraction` of the
    span is held out, and the region stops a purge and an embargo before it."""
    t0, t1 = int(feats.time_ns[0]), int(feats.time_ns[-1])
    hold_start = int(t0 + (t1 - t0) * (1.0 - cfg.holdout_fraction))
    everything = np.arange(len(d.t))
    region = _before(d, hold_start, embargo, everything)
    hold = everything[d.t >= hold_start]
    if len(region) < cfg.min_rows or not len(hold):
        raise TrainingError(
            f"{feats.symbol} h{horizon}: too few rows before ({len(region)}) or in ({len(hold)}) the holdout"
        )
    return region, hold, hold_start


def _walk_forward_named(d: _Data, region: np.ndarray, cfg: TrainConfig, embargo: int, name: str) -> dict[str, Any]:
    # walk_forward's refusals do not know the symbol x horizon: put it after the code, where messages carry it.
    try:
        return walk_forward(d, region, cfg, embargo)
    except UnlearnableError as exc:
        code, _, why = str(exc).partition(": ")
        raise UnlearnableError(f"{code}: {name}: {why}") from None


def _fit_registered(
    d: _Data, region: np.ndarray, cfg: TrainConfig, embargo: int, name: str
) -> tuple[xgb.XGBClassifier, model.Platt, float]:
    """The registered model, fitted and calibrated on the whole region; refused when no tree split."""
    fitted = _fit_calibrated(d, region, cfg, embargo)
    if fitted is None:
        raise TrainingError(f"{name}: the walk-forward region cannot fit and calibrate a model")
    clf, _platt, base = fitted
    if not model.has_split(clf):
        raise UnlearnableError(
            f"no_splits: {name}: no tree found a split worth making in {len(region)} rows "
            f"(base rate {base:.2%}): nothing in the features tells the outcomes apart"
        )
    return fitted


def _label_spec(cfg: TrainConfig, horizon: int, d: _Data, region: np.ndarray, wf: dict[str, Any]) -> dict[str, Any]:
    """What the model predicts and what its trades return: inference and risk price signals from this."""
    losing = region[d.y[region] == 0]
    return {
        "kind": "triple_barrier",
        "horizon_min": horizon,
        "row_interval_ms": cfg.features.row_interval_ms,
        **cfg.barriers.to_dict(),
        "win_net_bps": cfg.barriers.win_net_bps,
        "loss_net_bps": float(d.net[losing].mean()) if len(losing) else -cfg.barriers.stop_loss_bps,
        "return_curve": wf["return_curve"],
        "base_rate": float(d.y[region].mean()),
        "definition": "1 if a long decided at the row reaches its take-profit before its stop or time stop",
    }


def _gate_figures(wf: dict[str, Any], holdout: dict[str, Any]) -> dict[str, float]:
    """The out-of-sample figures the gate judges (the held-out backtest adds its own)."""
    pooled = wf["pooled"]
    return {
        "oos_log_loss": pooled["log_loss"],
        "oos_base_log_loss": pooled["base_log_loss"],
        "oos_brier": pooled["brier"],
        "oos_base_brier": pooled["base_brier"],
        "oos_auc": pooled["auc"],
        "oos_ece": pooled["ece"],
        "oos_rows": pooled["n"],
        "oos_folds": len(wf["folds"]),
        "holdout_log_loss": holdout["log_loss"],
        "holdout_base_log_loss": holdout["base_log_loss"],
    }


def _finite(figures: dict[str, float]) -> dict[str, float]:
    return {k: float(v) if math.isfinite(float(v)) else 0.0 for k, v in figures.items()}


def register(
    result: TrainResult, registry: Registry, cfg: TrainConfig, promote: bool, shadow: bool = False
) -> ModelEntry:
    """Register every trained model (the manifest keeps its gate figures); promote only if it passed.
    With `shadow`, the new version is scored in shadow beside the promoted one instead (registry.py)."""
    if not (result.parity_max_abs_diff <= cfg.max_parity) or math.isnan(result.parity_max_abs_diff):
        raise TrainingError(
            f"{result.symbol} h{result.horizon}: ONNX and XGBoost disagree by {result.parity_max_abs_diff:.3e} "
            f"(> {cfg.max_parity:g}); not registering"
        )
    schema = make_schema(cfg.features)
    result.entry = registry.register(
        result.symbol, result.horizon, result.onnx, result.meta, schema.to_dict(), promote=promote and result.passed
    )
    if shadow:
        registry.mark_shadow(result.symbol, result.horizon, result.entry.version)
    return result.entry

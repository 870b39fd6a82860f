"""Load the promoted models of a registry into ONNX Runtime sessions, verified, with an explicit report.

Every promoted artifact is checked (sha256 against the manifest, feature-schema hash and width
against this build) before a session is made. What cannot be served is listed with the reason, and
`require` decides what a gap means: "service" refuses to start, "symbol" serves only the symbols
that have every horizon, "none" serves whatever horizons exist. Nothing is skipped silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import onnxruntime as ort

from quantumedge.inference import onnx_graph
from quantumedge.inference.domain.features import FeatureSchema
from quantumedge.inference.registry import ModelEntry, Registry, RegistryError

Require = Literal["symbol", "service", "none"]


class ModelsUnavailableError(RuntimeError):
    """Required models are missing or refused; the message lists each symbol x horizon and why."""


def session_options() -> ort.SessionOptions:
    opts = ort.SessionOptions()
    # One thread per session: the live path is one row at a time, and threads would only add hand-offs.
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return opts


def make_session(data: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(data, session_options(), providers=["CPUExecutionProvider"])


@dataclass
class ModelStatus:
    symbol: str
    horizon: int
    version: str = ""
    sha256: str = ""
    feature_schema_hash: str = ""
    served: bool = False
    problem: str = ""
    data_source: str = ""
    gate: dict = field(default_factory=dict)


@dataclass
class ServedModel:
    entry: ModelEntry
    data: bytes


def _return_pricer(label: dict) -> Callable[[float], float]:
    """p -> expected net bps: the label's out-of-sample return curve (training/pipeline.return_curve),
    else p * (take-profit net) + (1 - p) * (mean net otherwise) for models trained before the curve."""
    curve = label.get("return_curve") or {}
    xs, ys = list(curve.get("p", ())), list(curve.get("net_bps", ()))
    if len(xs) >= 2 and len(xs) == len(ys):
        return lambda p: float(np.interp(p, xs, ys))
    win, loss = float(label.get("win_net_bps", 0.0)), float(label.get("loss_net_bps", 0.0))
    return lambda p: p * win + (1.0 - p) * loss


class SymbolPredictor:
    """All served horizons of one symbol: one ORT session over the merged graph (or one per horizon)."""

    def __init__(self, symbol: str, models: list[ServedModel], n_features: int, combine: bool) -> None:
        self.symbol = symbol
        self.models = models
        self.horizons = tuple(m.entry.horizon for m in models)
        self.versions = tuple(m.entry.version for m in models)
        self.n_features = n_features
        self.combined = False
        self._buf = np.zeros((1, n_features), dtype=np.float32)
        if combine and len(models) > 1:
            try:
                merged = onnx_graph.combine([m.data for m in models], name=f"{symbol}_all_horizons")
                self.sessions = [make_session(merged)]
                self.combined = True
            except ImportError:  # the `onnx` package is absent: fall back to a session per horizon
                self.sessions = [make_session(m.data) for m in models]
        else:
            self.sessions = [make_session(m.data) for m in models]
        if self.combined:
            # The merged graph must say exactly what the separate artifacts say.
            probe = np.linspace(-1, 1, n_features, dtype=np.float32).reshape(1, -1)
            merged_p = self.sessions[0].run([onnx_graph.OUTPUT_NAME], {onnx_graph.INPUT_NAME: probe})[0][0]
            single = [make_session(m.data).run(None, {onnx_graph.INPUT_NAME: probe})[0][0, 0] for m in models]
            if not np.allclose(merged_p, single, atol=1e-6):
                raise RegistryError(f"{symbol}: merged graph disagrees with its artifacts ({merged_p} vs {single})")

        self._pricers = [_return_pricer(m.entry.label) for m in models]

    def expected_returns(self, p_up: list[float]) -> list[float]:
        """Expected net return of a long per horizon, in bps, from each model's out-of-sample curve."""
        return [price(p) for price, p in zip(self._pricers, p_up, strict=True)]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Calibrated p_up, shape [N, H] in `horizons` order."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.combined:
            return self.sessions[0].run([onnx_graph.OUTPUT_NAME], {onnx_graph.INPUT_NAME: x})[0]
        return np.concatenate(
            [s.run([onnx_graph.OUTPUT_NAME], {onnx_graph.INPUT_NAME: x})[0] for s in self.sessions], axis=1
        )

    def predict_row(self, values: list[float]) -> list[float]:
        """One row (the live path). Not thread-safe: it reuses one input buffer; callers serialise."""
        self._buf[0] = values
        if self.combined:
            return self.sessions[0].run([onnx_graph.OUTPUT_NAME], {onnx_graph.INPUT_NAME: self._buf})[0][0].tolist()
        return [
            float(s.run([onnx_graph.OUTPUT_NAME], {onnx_graph.INPUT_NAME: self._buf})[0][0, 0]) for s in self.sessions
        ]


@dataclass
class ModelSet:
    predictors: dict[str, SymbolPredictor] = field(default_factory=dict)
    status: list[ModelStatus] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    served: dict[tuple[str, int], ServedModel] = field(default_factory=dict)
    # Shadow predictors (inference/shadow.py): what each symbol would be scored by if its shadows were promoted.
    shadow: dict[str, SymbolPredictor] = field(default_factory=dict)
    shadow_versions: dict[tuple[str, int], str] = field(default_factory=dict)
    shadow_problems: list[str] = field(default_factory=list)

    def served_pairs(self) -> list[str]:
        return [f"{s}/h{h}" for (s, h) in sorted(self.served) if s in self.predictors]

    def describe(self) -> str:
        served = ", ".join(
            f"{p.symbol} h{h} {v}"
            for p in self.predictors.values()
            for h, v in zip(p.horizons, p.versions, strict=True)
        )
        return f"serving: {served or 'nothing'}; missing: {'; '.join(self.missing) or 'none'}"


def describe_source(source: dict) -> str:
    """One line for a manifest's data_source."""
    if not source:
        return "unknown"
    span = f" span {source.get('first', '?')}..{source.get('last', '?')} ({source.get('hours', 0):.1f} h)"
    if source.get("kind") == "synthetic":
        return f"synthetic seed={source.get('seed')} edge={source.get('edge_bps_per_s')} bps/s{span}"
    return f"recording {source.get('path', '?')}{span}"


def gate_problem(entry: ModelEntry, allow_synthetic: bool) -> str:
    """Why a verified artifact may still not serve: the promotion gate, or synthetic data on a real venue."""
    gate = entry.gate or {}
    if gate.get("passed") is not True:
        failures = "; ".join(gate.get("failures", [])) or "no gate figures in the manifest"
        return f"refused by the promotion gate: {failures}"
    if not allow_synthetic and (entry.data_source or {}).get("kind") == "synthetic":
        return (
            "trained on synthetic data only: testnet and live venues refuse it "
            "(set QE_INFERENCE__ALLOW_SYNTHETIC_MODELS=true to serve it anyway)"
        )
    return ""


def load_models(
    registry: Registry,
    symbols: list[str],
    horizons: list[int],
    schema: FeatureSchema,
    require: Require = "symbol",
    combine: bool = True,
    previous: ModelSet | None = None,
    allow_synthetic: bool = True,
) -> ModelSet:
    """Verify and load the promoted model of every symbol x horizon.

    A model that failed the promotion gate is never served, whatever the manifest promotes; nor is a
    synthetic-trained one unless `allow_synthetic` (the service allows it on the paper venue only).

    With `previous` (a hot reload), a newly promoted artifact that fails verification does not
    replace the model being served: the old one stays, and the status says why.
    """
    try:
        doc = registry.load()
    except RegistryError as exc:
        if previous is not None:
            for st in previous.status:
                st.problem = f"manifest unreadable, kept loaded models: {exc}"
            return previous
        raise ModelsUnavailableError(str(exc)) from None
    out = ModelSet()
    for symbol in symbols:
        for h in horizons:
            st = ModelStatus(symbol, h)
            out.status.append(st)
            model, problem = _promoted_model(registry, doc, st, schema, allow_synthetic)
            old = previous.served.get((symbol, h)) if previous else None
            if old is not None and gate_problem(old.entry, allow_synthetic):
                old = None
            if model is None and old is not None:
                # Keep serving what was verified before; say loudly that the promotion was refused.
                model = old
                problem = f"{problem}; still serving {old.entry.version}"
                # The status describes the model served (its gate, its source); `problem` names the refused one.
                _describe(st, old.entry)
            if model is not None:
                out.served[(symbol, h)] = model
            if problem:
                st.problem = problem
                if model is None:
                    out.missing.append(f"{symbol}/h{h}: {problem}")
    if require == "service" and out.missing:
        raise ModelsUnavailableError(
            "models required by the service are unavailable: "
            + "; ".join(out.missing)
            + " (inference.require_models=service, QE_INFERENCE__REQUIRE_MODELS; QE_EXECUTION__MODE=observe runs"
            " without them)"
        )
    for symbol in symbols:
        _build_predictor(out, symbol, horizons, schema, require, combine, previous)
    return out


def _describe(st: ModelStatus, entry: ModelEntry) -> None:
    st.version, st.sha256, st.feature_schema_hash = entry.version, entry.sha256, entry.feature_schema_hash
    st.data_source, st.gate = describe_source(entry.data_source), dict(entry.gate or {})


def _promoted_model(
    registry: Registry, doc: dict, st: ModelStatus, schema: FeatureSchema, allow_synthetic: bool
) -> tuple[ServedModel | None, str]:
    """(the promoted model of st's symbol x horizon if it verifies and may serve, else None; why not)."""
    entry = registry.promoted(st.symbol, st.horizon, doc)
    if entry is None:
        version = registry.promoted_version(st.symbol, st.horizon, doc)
        if not registry.manifest_path.exists():
            return None, f"no registry at {registry.manifest_path} (see `quantumedge train`, QE_MODELS_DIR)"
        if version is None:
            return None, f"no promoted version in {registry.manifest_path}"
        return None, f"promoted version {version} is not in {registry.manifest_path}"
    _describe(st, entry)
    try:
        model = ServedModel(entry, registry.read_verified(entry, schema.hash, schema.size))
    except RegistryError as exc:
        return None, str(exc)
    problem = gate_problem(entry, allow_synthetic)
    return (None if problem else model), problem


def _build_predictor(
    out: ModelSet,
    symbol: str,
    horizons: list[int],
    schema: FeatureSchema,
    require: Require,
    combine: bool,
    previous: ModelSet | None,
) -> None:
    """One symbol's predictor over its served horizons, or none (with the reason) when `require` says so."""
    have = [out.served[(symbol, h)] for h in horizons if (symbol, h) in out.served]
    if not have or (require == "symbol" and len(have) < len(horizons)):
        for st in out.status:
            if st.symbol == symbol:
                st.served = False
                if not st.problem:
                    st.problem = "symbol not served: another horizon is missing (require_models=symbol)"
        return
    reused = previous.predictors.get(symbol) if previous else None
    if reused is not None and _ids(reused.models) == _ids(have):
        out.predictors[symbol] = reused  # unchanged: keep the sessions
    else:
        out.predictors[symbol] = SymbolPredictor(symbol, have, schema.size, combine)
    for st in out.status:
        if st.symbol == symbol and (symbol, st.horizon) in out.served:
            st.served = True


def _ids(models: list[ServedModel]) -> list[tuple[int, str, str]]:
    return [(m.entry.horizon, m.entry.version, m.entry.sha256) for m in models]


def ensemble(p_up: list[float], horizons: tuple[int, ...], weights: Mapping[int, float]) -> tuple[float, float]:
    """(edge, confidence): weighted mean of (2p - 1) and of p over the served horizons."""
    total = edge = conf = 0.0
    for p, h in zip(p_up, horizons, strict=True):
        w = float(weights.get(h, 0.0))
        total += w
        edge += w * (2.0 * p - 1.0)
        conf += w * p
    if total <= 0:
        n = len(p_up)
        return (sum(2.0 * p - 1.0 for p in p_up) / n, sum(p_up) / n) if n else (0.0, 0.5)
    return edge / total, conf / total

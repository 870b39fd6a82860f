"""Fit, score, calibrate and export one XGBoost model (one symbol x one horizon).

Calibration is Platt scaling on the model's margin, p = sigmoid(a * margin + b), fitted on
out-of-sample predictions. It is folded into the exported ONNX graph (Log -> MatMul -> Add ->
Sigmoid after the tree ensemble), so the artifact outputs calibrated probabilities by itself;
the manifest keeps `a` and `b` for the record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnxmltools
import xgboost as xgb
from onnx import TensorProto, helper, numpy_helper
from onnxmltools.convert.common.data_types import FloatTensorType
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

ONNX_OPSET = 15  # onnxmltools' XGBoost converter supports target opsets up to 15
INPUT_NAME = "features"
OUTPUT_NAME = "p_up"
_EPS = 1e-7


@dataclass(frozen=True)
class ModelParams:
    # Rows a second apart with minute-long labels are far from independent: shallow, heavily
    # regularised trees (a leaf needs ~8 minutes of rows) or they learn the few episodes they saw.
    n_estimators: int = 60
    max_depth: int = 2
    learning_rate: float = 0.05
    subsample: float = 0.5
    colsample_bytree: float = 0.5
    min_child_weight: float = 500.0
    reg_lambda: float = 1.0
    seed: int = 7
    n_jobs: int = 1  # one thread: histogram sums in a fixed order, so a run is bit-for-bit reproducible


@dataclass(frozen=True)
class Platt:
    a: float = 1.0
    b: float = 0.0

    def apply(self, margin: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.a * margin + self.b)))


@dataclass
class Scores:
    auc: float
    log_loss: float
    brier: float
    n: int
    base_rate: float
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "auc": round(self.auc, 6),
            "log_loss": round(self.log_loss, 6),
            "brier": round(self.brier, 6),
            "n": self.n,
            "base_rate": round(self.base_rate, 6),
            **self.extra,
        }


def fit(x: np.ndarray, y: np.ndarray, params: ModelParams) -> xgb.XGBClassifier:
    clf = xgb.XGBClassifier(
        n_estimators=params.n_estimators,
        max_depth=params.max_depth,
        learning_rate=params.learning_rate,
        subsample=params.subsample,
        colsample_bytree=params.colsample_bytree,
        min_child_weight=params.min_child_weight,
        reg_lambda=params.reg_lambda,
        random_state=params.seed,
        n_jobs=params.n_jobs,
        tree_method="hist",
        objective="binary:logistic",
        eval_metric="logloss",
    )
    # float32 in training as in serving: the trees' split thresholds then see the same values ORT sees.
    clf.fit(x.astype(np.float32), y)
    return clf


def margin(clf: xgb.XGBClassifier, x: np.ndarray) -> np.ndarray:
    return clf.get_booster().inplace_predict(x.astype(np.float32), predict_type="margin").astype(np.float64)


def score(y: np.ndarray, p: np.ndarray) -> Scores:
    p = np.clip(p, _EPS, 1 - _EPS)
    auc = roc_auc_score(y, p) if len(np.unique(y)) == 2 else float("nan")
    return Scores(
        float(auc), float(log_loss(y, p, labels=[0, 1])), float(brier_score_loss(y, p)), len(y), float(y.mean())
    )


def has_split(clf: xgb.XGBClassifier) -> bool:
    """Whether any tree of the booster splits: leaf-only boosters predict a constant (and onnxmltools
    exports them wrongly, so they are refused before export rather than caught by the parity check)."""
    return any('"split"' in tree for tree in clf.get_booster().get_dump(dump_format="json"))


def fit_platt(m: np.ndarray, y: np.ndarray) -> Platt:
    if len(np.unique(y)) < 2:
        return Platt()
    lr = LogisticRegression(C=1e6, solver="lbfgs", max_iter=1000).fit(m.reshape(-1, 1), y)
    return Platt(float(lr.coef_[0, 0]), float(lr.intercept_[0]))


def to_onnx(clf: xgb.XGBClassifier, n_features: int, platt: Platt, name: str, metadata: dict[str, str]) -> bytes:
    """The tree ensemble plus the calibration, as ONNX bytes: input `features` float[N, F] -> `p_up` float[N, 1]."""
    model = onnxmltools.convert_xgboost(
        clf, initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))], target_opset=ONNX_OPSET
    )
    graph = model.graph
    probs = next(o.name for o in graph.output if o.name == "probabilities")
    # logit(p1) = log p1 - log p0, as one MatMul with [-1, 1]; Platt's `a` folds into the same weights.
    weights = numpy_helper.from_array(np.array([[-platt.a], [platt.a]], dtype=np.float32), "platt_w")
    bias = numpy_helper.from_array(np.array([platt.b], dtype=np.float32), "platt_b")
    lo = numpy_helper.from_array(np.array(_EPS, dtype=np.float32), "clip_lo")
    hi = numpy_helper.from_array(np.array(1.0, dtype=np.float32), "clip_hi")
    graph.initializer.extend([weights, bias, lo, hi])
    graph.node.extend(
        [
            helper.make_node("Clip", [probs, "clip_lo", "clip_hi"], ["p_clipped"], name="calib_clip"),
            helper.make_node("Log", ["p_clipped"], ["log_p"], name="calib_log"),
            helper.make_node("MatMul", ["log_p", "platt_w"], ["calib_mm"], name="calib_matmul"),
            helper.make_node("Add", ["calib_mm", "platt_b"], ["calib_z"], name="calib_add"),
            helper.make_node("Sigmoid", ["calib_z"], [OUTPUT_NAME], name="calib_sigmoid"),
        ]
    )
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [None, 1]))
    graph.name = name  # the converter names graphs with a random uuid; a fixed name keeps the bytes reproducible
    if not any(op.domain in ("", "ai.onnx") for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid("", ONNX_OPSET))
    model.producer_name = "quantumedge-train"
    model.doc_string = "XGBoost binary classifier with Platt calibration; output p_up = P(mid rises over the horizon)"
    for key, value in sorted(metadata.items()):
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=str(value)))
    onnx.checker.check_model(model)
    return model.SerializeToString()


def onnx_predict(onnx_bytes: bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
    return sess.run([OUTPUT_NAME], {INPUT_NAME: x.astype(np.float32)})[0][:, 0].astype(np.float64)


def parity(onnx_bytes: bytes, clf: xgb.XGBClassifier, platt: Platt, x: np.ndarray) -> float:
    """max |p_onnx - p_xgboost| (both calibrated) on x."""
    if len(x) == 0:
        return math.nan
    return float(np.max(np.abs(onnx_predict(onnx_bytes, x) - platt.apply(margin(clf, x)))))

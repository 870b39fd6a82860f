"""Training: labels, walk-forward without look-ahead, calibration, ONNX export with parity, reproducibility, CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from quantumedge.inference.features import FEATURE_SCHEMA
from quantumedge.inference.registry import Registry
from quantumedge.training import dataset, model
from quantumedge.training.cli import train_main
from quantumedge.training.model import ModelParams
from quantumedge.training.pipeline import TrainConfig, TrainingError, register, train_one
from quantumedge.training.synthetic_data import write_synthetic_recording

CFG = TrainConfig(horizons=(1, 5), folds=2, params=ModelParams(n_estimators=8, max_depth=2), min_rows=300)


@pytest.fixture(scope="module")
def feats(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("rec")
    write_synthetic_recording(root, ["BTCUSDT"], 2500, seed=13)
    return dataset.load_features(root, ["BTCUSDT"], CFG.features)["BTCUSDT"]


def test_labels_are_the_direction_over_the_horizon_and_the_dead_band_is_dropped(feats) -> None:
    data = dataset.label(feats, 5, dead_band_bps=1.0)
    ret = np.log(feats.mid[data.rows + 5] / feats.mid[data.rows]) * 1e4
    np.testing.assert_allclose(data.ret_bps, ret)
    assert np.all(np.abs(data.ret_bps) > 1.0)
    np.testing.assert_array_equal(data.y, (ret > 0).astype(int))
    everything = dataset.label(feats, 5, dead_band_bps=0.0)
    assert len(everything.y) > len(data.y) and everything.rows[-1] == len(feats) - 6  # no label past the end


def test_walk_forward_never_trains_on_labels_that_reach_the_test_block(feats) -> None:
    h, purge = 30, 130
    data = dataset.label(feats, h, 0.0)
    folds = dataset.walk_forward(len(feats), data, h, folds=3, purge=purge)
    assert [f.index for f in folds] == [1, 2, 3]
    for f in folds:
        assert data.rows[f.train].max() + h + purge < data.rows[f.test].min()
        assert len(f.train) > 0 and len(f.test) > 0
    assert len(folds[2].train) > len(folds[0].train)  # expanding window
    calib, hold = dataset.split_holdout(data, folds[-1].test, h, purge)
    assert data.rows[calib].max() + h + purge < data.rows[hold].min()


def test_platt_scaling_recovers_a_known_miscalibration() -> None:
    rng = np.random.default_rng(0)
    m = rng.normal(0, 2, 20_000)
    y = (rng.random(20_000) < 1 / (1 + np.exp(-(0.5 * m - 0.2)))).astype(int)
    platt = model.fit_platt(m, y)
    assert platt.a == pytest.approx(0.5, abs=0.05) and platt.b == pytest.approx(-0.2, abs=0.05)


def test_onnx_export_matches_xgboost_and_a_mismatch_is_refused(feats, tmp_path: Path) -> None:
    res = train_one(feats, 1, CFG, "fp")
    direct = model.parity(res.onnx, res.clf, res.platt, res.holdout_x)
    print(f"ONNX vs XGBoost (calibrated): max |dp| = {direct:.3e} on {len(res.holdout_x)} held-out rows")
    print(f"ONNX vs XGBoost (uncalibrated): max |dp| = {res.raw_parity_max_abs_diff:.3e}")
    assert direct == res.parity_max_abs_diff < 1e-5
    assert res.raw_parity_max_abs_diff < 1e-5
    registry = Registry(tmp_path / "models")
    entry = register(res, registry, CFG, promote=False)
    assert entry.parity_max_abs_diff == res.parity_max_abs_diff and registry.promoted_version("BTCUSDT", 1) is None

    # An artifact whose calibration differs from the Python model: the parity check catches it.
    wrong = model.to_onnx(res.clf, FEATURE_SCHEMA.size, model.Platt(a=res.platt.a * 3, b=0.5), "wrong", {})
    res.onnx, res.parity_max_abs_diff = wrong, model.parity(wrong, res.clf, res.platt, res.holdout_x)
    assert res.parity_max_abs_diff > 1e-5
    with pytest.raises(TrainingError, match="ONNX and XGBoost disagree"):
        register(res, registry, CFG, promote=True)
    assert [e.version for e in registry.entries()] == ["v1"]


def test_a_run_is_reproducible_from_its_seed(feats) -> None:
    a = train_one(feats, 5, CFG, "fp")
    b = train_one(feats, 5, CFG, "fp")
    c = train_one(feats, 5, replace(CFG, params=replace(CFG.params, seed=99)), "fp")
    assert a.onnx == b.onnx and a.metrics == b.metrics
    assert c.onnx != a.onnx


def test_too_little_data_is_an_error_naming_the_model(feats) -> None:
    with pytest.raises(TrainingError, match=r"BTCUSDT h1: only \d+ labelled rows"):
        train_one(feats, 1, replace(CFG, min_rows=10**6), "fp")


def test_cli_trains_from_the_synthetic_market_lists_and_promotes(tmp_path: Path, capsys) -> None:
    models = tmp_path / "models"
    common = ["--models-dir", str(models)]
    argv = ["--synthetic-steps", "1500", "--symbols", "ETHUSDT", "--horizons", "1", "--folds", "2"]
    argv += ["--n-estimators", "5", "--max-depth", "2", *common]
    assert train_main(argv) == 0
    assert train_main(argv) == 0  # a second run adds v2 and promotes nothing
    registry = Registry(models)
    assert [e.version for e in registry.entries()] == ["v1", "v2"]
    assert registry.promoted_version("ETHUSDT", 1) is None
    capsys.readouterr()
    assert train_main(["--promote", "ETHUSDT", "1", "v2", *common]) == 0
    assert registry.promoted_version("ETHUSDT", 1) == "v2"
    assert train_main(["--list", *common]) == 0
    listed = capsys.readouterr().out
    assert "ETHUSDT" in listed and "v2" in listed and "yes" in listed
    assert train_main(["--promote", "ETHUSDT", "1", "v7", *common]) == 2
    assert "no model ETHUSDT h1 v7" in capsys.readouterr().err
    manifest = json.loads((models / "manifest.json").read_text())
    assert manifest["promoted"] == {"ETHUSDT": {"1": "v2"}}


def test_cli_reports_missing_recordings(tmp_path: Path, capsys) -> None:
    rc = train_main(["--data", str(tmp_path / "none"), "--symbols", "BTCUSDT", "--models-dir", str(tmp_path / "m")])
    assert rc == 2
    assert "no recorded files for BTCUSDT" in capsys.readouterr().err

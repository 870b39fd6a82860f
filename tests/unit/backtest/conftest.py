"""One small trained registry, and the trade plan it was trained for, for the backtest tests.

The repository ships no models (the promoted defaults are made by `quantumedge train` and must pass the
gate), so these tests train small real models from a few hours of the synthetic market with the gate
*waived* (marked `gate.waived` in the manifest), as the serving tests do (tests/unit/inference/support.py).
They prove the backtest's mechanics (replay, determinism, figures, limits, halts, refusals), not that a
model earns money; tests/unit/strategy covers that.

A few hours cannot teach the default plan (80/40 bp barriers over a 20 bp round trip), so models and
backtests share a small plan: 8/6 bp barriers and 1 bp fees. It is set the way an operator sets it, by QE_
environment variables, so the CLI runs under test see exactly what training and the direct runs saw.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from quantumedge.settings import Settings, load_settings
from quantumedge.training.labels import Barriers
from tests.support.inference_feed import SMALL, small_recording, train_into

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
PLAN_ENV = {
    "QE_RISK__LIMITS__TAKE_PROFIT_BPS": "8",
    "QE_RISK__LIMITS__STOP_LOSS_BPS": "6",
    "QE_EXECUTION__PAPER_MAKER_FEE_BPS": "1",
    "QE_EXECUTION__PAPER_TAKER_FEE_BPS": "1",
}


def plan_settings(models_dir: Path) -> Settings:
    """The settings every backtest under test runs on: the small plan and the trained registry."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in PLAN_ENV.items():
            mp.setenv(name, value)
        return load_settings(models_dir=models_dir)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry with every symbol x default horizon trained for the small plan, as v1, promoted."""
    recording = small_recording(tmp_path_factory.mktemp("training-recording"), SYMBOLS)
    root = tmp_path_factory.mktemp("models")
    cfg = replace(SMALL, barriers=Barriers.from_settings(plan_settings(root)))
    train_into(root, recording, SYMBOLS, cfg)
    return root


@pytest.fixture(autouse=True)
def _plan_env(monkeypatch: pytest.MonkeyPatch, models_dir: Path) -> Iterator[None]:
    # The CLI finds the plan and the registry as an operator points it at them; --models-dir overrides.
    for name, value in PLAN_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("QE_MODELS_DIR", str(models_dir))
    yield

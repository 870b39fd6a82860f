"""One small trained registry for the backtest tests.

The repository ships no models (the strategy's promoted defaults are made by `quantumedge train` and must
pass the gate), so the backtest tests train small real models from the synthetic market with the gate
*waived* (marked `gate.waived` in the manifest), exactly as the serving tests do: these tests prove the
backtest's mechanics (replay, determinism, figures, limits, halts, refusals), not that a model earns money.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.inference.support import small_recording, train_into

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry with every symbol x default horizon trained, registered as v1 and promoted."""
    recording = small_recording(tmp_path_factory.mktemp("training-recording"), SYMBOLS)
    root = tmp_path_factory.mktemp("models")
    train_into(root, recording, SYMBOLS)
    return root

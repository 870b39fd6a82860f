"""One small recording and one small trained registry for the whole inference test package."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from quantumedge.inference.registry import Registry
from tests.support.inference_feed import small_recording, train_into

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture(scope="session")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_recording(tmp_path_factory.mktemp("recording"), SYMBOLS)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, recording: Path):
    """(registry root, train results): every symbol x horizon trained, registered as v1 and promoted."""
    root = tmp_path_factory.mktemp("models")
    _, results = train_into(root, recording, SYMBOLS)
    return root, results


@pytest.fixture
def registry(tmp_path: Path, trained) -> Registry:
    """A private copy of the trained registry that a test may tamper with."""
    root = tmp_path / "models"
    shutil.copytree(trained[0], root)
    return Registry(root)

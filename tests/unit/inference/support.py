"""Shared helpers for the model tests: a small recording, a small trained registry, bus plumbing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from quantumedge.inference.registry import Registry
from quantumedge.shared import topics
from quantumedge.shared.bus import Bus
from quantumedge.training import dataset
from quantumedge.training.model import ModelParams
from quantumedge.training.pipeline import TrainConfig, TrainResult, train_symbols
from quantumedge.training.synthetic_data import write_synthetic_recording
from quantumedge.v1 import market_pb2

SMALL = TrainConfig(
    horizons=(1, 5, 30),
    folds=2,
    params=ModelParams(n_estimators=8, max_depth=2),
    min_rows=300,
)


def small_recording(root: Path, symbols: list[str], steps: int = 2500, seed: int = 11) -> Path:
    write_synthetic_recording(root, symbols, steps, seed=seed)
    return root


def train_into(
    registry_root: Path,
    recording: Path,
    symbols: list[str],
    cfg: TrainConfig = SMALL,
    promote: bool = True,
) -> tuple[Registry, list[TrainResult]]:
    registry = Registry(registry_root)
    feats = dataset.load_features(recording, symbols, cfg.features)
    return registry, train_symbols(feats, cfg, registry, promote=promote)


def publish_market(bus: Bus, events: Iterable[market_pb2.MarketEvent]) -> int:
    n = 0
    for ev in events:
        bus.publish(topics.market_topic_for(ev.WhichOneof("payload")), ev.symbol, ev)
        n += 1
    bus.flush()
    return n


def wait_for(predicate: Callable[[], bool], timeout_s: float = 20.0, every_s: float = 0.02) -> bool:
    """Poll until predicate() is true; the caller asserts on the outcome, never on the time it took."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every_s)
    return predicate()

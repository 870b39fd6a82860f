"""Shared helpers for the model tests: a small recording, a small trained registry, bus plumbing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, replace
from pathlib import Path

from quantumedge.inference.domain.features import make_schema
from quantumedge.inference.registry import Registry
from quantumedge.settings import load_settings
from quantumedge.shared import topics
from quantumedge.shared.bus import Bus
from quantumedge.training import dataset
from quantumedge.training.labels import Barriers
from quantumedge.training.model import ModelParams
from quantumedge.training.pipeline import TrainConfig, TrainResult, register, train_one
from quantumedge.training.synthetic_data import write_synthetic_recording
from quantumedge.v1 import market_pb2

SMALL = TrainConfig(
    # Tight barriers and a short embargo so every horizon, 30 min included, has both outcomes in hours.
    barriers=replace(Barriers.from_settings(load_settings()), take_profit_bps=8.0, stop_loss_bps=6.0),
    embargo_s=60.0,
    horizons=(1, 5, 30),
    folds=2,
    params=ModelParams(n_estimators=8, max_depth=2, min_child_weight=1.0),
    min_rows=300,
)


def small_recording(root: Path, symbols: list[str], steps: int = 4 * 3600, seed: int = 11) -> Path:
    write_synthetic_recording(root, symbols, steps, seed=seed)
    return root


def train_into(
    registry_root: Path,
    recording: Path,
    symbols: list[str],
    cfg: TrainConfig = SMALL,
    promote: bool = True,
) -> tuple[Registry, list[TrainResult]]:
    """Train every symbol x horizon and register it (promoted when `promote`).

    These are fixtures for the serving mechanics (registry, checksums, reload, signals), not models that
    earned their place: a few hours of market cannot pass the promotion gate, so the gate is *waived*
    here and says so in the manifest (`gate.waived`). The gate itself is tested in tests/unit/strategy
    and tests/unit/training on models that had to pass or fail it."""
    registry = Registry(registry_root)
    feats = dataset.load_features(recording, symbols, cfg.features)
    results = []
    source = {"kind": "synthetic", "seed": 11, "test_fixture": True}
    for symbol in sorted(feats):
        fp = dataset.fingerprint(feats[symbol], make_schema(cfg.features).hash)
        for h in cfg.horizons:
            res = train_one(feats[symbol], h, cfg, fp, source)
            res.meta["gate"] = {**res.meta["gate"], "passed": True, "waived": res.meta["gate"]["failures"]}
            res.meta["gate"]["failures"] = []
            register(res, registry, cfg, promote=promote)
            results.append(res)
    return registry, results


# What a registered version carries besides its artifact (register() fills in the rest).
_META_FIELDS = ("training_data_fingerprint", "calibration", "metrics", "params", "label", "data_source", "gate")


def meta_of(registry: Registry, symbol: str, horizon: int) -> dict:
    """The manifest metadata of the promoted version (gate waived as in the fixture), to register the same
    model again as a new version the gate lets through."""
    entry = registry.promoted(symbol, horizon)
    assert entry is not None and entry.gate["passed"] is True
    return {k: v for k, v in asdict(entry).items() if k in (*_META_FIELDS, "drift_reference")}


def refused_meta(registry: Registry, symbol: str, horizon: int) -> dict:
    """The same metadata with the gate's verdict a refusal (the reason is a code before ":")."""
    meta = meta_of(registry, symbol, horizon)
    meta["gate"] = {
        "passed": False,
        "failures": ["holdout_trades: 0 round trips < 5 in the held-out backtest"],
        "figures": {},
    }
    return meta


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

"""Settings of the inference service (section `inference` of the configuration)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class InferenceSettings(BaseModel):
    # Minutes: each horizon's model scores a long with that time stop (training/labels.py).
    horizons: list[int] = [1, 5, 30]
    # What a missing or refused model stops: "symbol" (that symbol gets no signals), "service" (refuse
    # to start), "none" (serve the horizons that exist and passed the gate). Start-up always logs what
    # is served and missing, with the gate's figures.
    require_models: Literal["symbol", "service", "none"] = "none"
    # A row is decided this long (market time) after its boundary: what a late stream may still deliver.
    row_lateness_ms: float = Field(default=250.0, ge=0.0, le=60_000.0)
    # Testnet and live refuse models trained on synthetic data unless this is set.
    allow_synthetic_models: bool = False
    # The drift guard (inference/domain/drift.py): rows in its window, rows before it judges, and its limits.
    drift_window_rows: int = Field(default=900, ge=10)
    drift_min_rows: int = Field(default=120, ge=10)
    # The floor of each feature's PSI limit; the limit itself is measured on training's own windows (drift.py).
    drift_psi_limit: float = Field(default=0.5, gt=0.0)
    drift_range_limit: float = Field(default=0.5, gt=0.0, le=1.0)
    # Weight of each horizon in the ensemble edge/confidence (QE_INFERENCE__ENSEMBLE_WEIGHTS='{"1":0.2,...}').
    ensemble_weights: dict[int, float] = Field(default_factory=lambda: {1: 0.2, 5: 0.3, 30: 0.5})
    # Merge a symbol's horizons into one ONNX graph (one ORT call per row instead of one per horizon).
    combine_horizons: bool = True
    # Hot reload: how often the manifest's modification time is checked (0 = only on ReloadModels).
    reload_poll_s: float = Field(default=2.0, ge=0.0)
    # Reordering of the three market topics (see inference/domain/ordering.py): longest wall-clock wait for a
    # quiet stream once the consumer is caught up, and most events held per symbol.
    reorder_max_hold_ms: float = Field(default=200.0, ge=0.0)
    reorder_max_buffered: int = Field(default=50_000, ge=1)
    # A consumer that received nothing for this long is caught up: held events are then released.
    reorder_idle_ms: float = Field(default=1000.0, ge=0.0)

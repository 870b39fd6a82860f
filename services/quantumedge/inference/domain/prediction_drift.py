"""Prediction drift: how far the live mean of each model's p_up has moved from the base rate it was trained on.

A cheap, always-on indicator (an exponential moving average per symbol and horizon); the per-feature
distribution guard compares inputs, this compares outputs. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def training_base_rate(entry: Any) -> float:
    """The share of take-profits first among the labelled training rows the manifest recorded for a model
    (its label's base rate, else the walk-forward folds'; 0.5 when it recorded none)."""
    label = getattr(entry, "label", None) or {}
    if isinstance(label.get("base_rate"), int | float):
        return float(label["base_rate"])
    metrics = getattr(entry, "metrics", None) or {}
    folds = metrics.get("walk_forward", metrics).get("folds", [])
    rates = [
        float(f["base_rate"]) for f in folds if isinstance(f, Mapping) and isinstance(f.get("base_rate"), int | float)
    ]
    return sum(rates) / len(rates) if rates else 0.5


class PredictionDrift:
    def __init__(self, alpha: float = 0.01) -> None:
        self.alpha = alpha
        self._mean: dict[tuple[str, int], float] = {}
        self._base: dict[tuple[str, int], float] = {}

    def set_base_rate(self, symbol: str, horizon: int, rate: float) -> None:
        self._base[(symbol, horizon)] = rate

    def update(self, symbol: str, horizon: int, p_up: float) -> None:
        key = (symbol, horizon)
        previous = self._mean.get(key)
        self._mean[key] = p_up if previous is None else previous + self.alpha * (p_up - previous)

    def values(self) -> list[tuple[str, int, float]]:
        """(symbol, horizon, |live mean p_up - training base rate|) for every model seen so far."""
        return [(s, h, abs(m - self._base.get((s, h), 0.5))) for (s, h), m in sorted(self._mean.items())]

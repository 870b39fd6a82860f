"""The four services by name: one name everywhere (folder, `serve` argument, chart key, consumer group)."""

from __future__ import annotations

import importlib

from quantumedge.settings import Settings
from quantumedge.shared.bus import Bus
from quantumedge.shared.config import SERVICE_NAMES
from quantumedge.shared.market_clock import MarketClock
from quantumedge.shared.service import ServiceBase

_CLASSES = {
    "ingest": "quantumedge.ingest.service:IngestService",
    "inference": "quantumedge.inference.service:InferenceService",
    "risk": "quantumedge.risk.service:RiskService",
    "execution": "quantumedge.execution.service:ExecutionService",
}
assert tuple(_CLASSES) == SERVICE_NAMES


def create(name: str, settings: Settings, bus: Bus, clock: MarketClock | None = None) -> ServiceBase:
    """Instantiate one service; importing lazily keeps `serve risk` from loading ONNX Runtime.

    `clock`: the embedded lockstep run's market clock, the same one for every service; None = the wall clock."""
    if name not in _CLASSES:
        raise ValueError(f"unknown service {name!r}; expected one of {', '.join(_CLASSES)}")
    module, _, cls = _CLASSES[name].partition(":")
    factory = getattr(importlib.import_module(module), cls)
    return factory(settings, bus) if clock is None else factory(settings, bus, clock=clock)

"""Settings of the ingest service (section `ingest` of the configuration)."""

from __future__ import annotations

from pydantic import BaseModel


class IngestSettings(BaseModel):
    # "binance" is the normal path outside embedded mode; `quantumedge up` switches to "synthetic".
    source: str = "binance"
    synthetic_seed: int = 7
    # Bounded run for demos and tests: stop the synthetic source after this many steps (0 = unbounded).
    synthetic_steps: int = 0
    # Pacing of the synthetic source: 0 = as fast as possible, 1 = real time (100 ms steps), N = N x real time.
    synthetic_speed: float = 0.0

"""Settings of the risk service (section `risk` of the configuration)."""

from __future__ import annotations

from pydantic import BaseModel


class RiskSettings(BaseModel):
    starting_equity: float = 10_000.0
    max_order_notional: float = 1_000.0

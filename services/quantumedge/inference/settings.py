"""Settings of the inference service (section `inference` of the configuration)."""

from __future__ import annotations

from pydantic import BaseModel


class InferenceSettings(BaseModel):
    horizons: list[int] = [1, 5, 30]

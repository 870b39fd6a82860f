"""Settings of the optional LLM risk moderator (section `risk.moderator`; see docs/moderator.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

FailPolicy = Literal["deny", "allow"]


class ModeratorSettings(BaseModel):
    """Section `risk.moderator` (QE_RISK__MODERATOR__*). Off by default."""

    enabled: bool = False
    # Any OpenAI-compatible endpoint, up to and including /v1 (the client appends /chat/completions).
    base_url: str = ""
    model: str = ""
    # The whole call (connect, send, answer) must finish within this; the consumer waits no longer.
    budget_ms: float = Field(default=800.0, gt=0, le=30_000)
    # On timeout or error: deny the entry, or allow it with the moderator marked unavailable on the decision.
    fail_policy: FailPolicy = "deny"
    # The Vault KV v2 path of the API key (key `api_key`); only risk's policy reads it.
    api_key_path: str = "quantumedge/moderator/api-key"
    # What one step of Signal.predictions[].horizon lasts: an entry whose shortest horizon is shorter than the
    # budget skips the moderator (its answer would come after the prediction expired).
    horizon_unit_ns: int = Field(default=60_000_000_000, gt=0)
    max_tokens: int = Field(default=200, ge=16, le=4_000)
    recent_fills: int = Field(default=5, ge=0, le=50)

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> ModeratorSettings:
        if self.enabled and not (self.base_url and self.model):
            raise ValueError("risk.moderator.enabled needs base_url and model (QE_RISK__MODERATOR__BASE_URL, __MODEL)")
        return self

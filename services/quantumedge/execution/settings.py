"""Settings of the execution service (section `execution` of the configuration)."""

from __future__ import annotations

from pydantic import BaseModel


class ExecutionSettings(BaseModel):
    # paper | testnet | live. Live is never the default and needs credentials from Vault.
    venue: str = "paper"

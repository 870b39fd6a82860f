"""Settings of the Vault / OpenBao client (section `vault` of the configuration)."""

from __future__ import annotations

from pydantic import BaseModel


class VaultSettings(BaseModel):
    addr: str = ""
    auth_method: str = "token"

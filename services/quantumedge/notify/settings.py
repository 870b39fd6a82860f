"""Notification settings (QE_NOTIFY__*). Secrets (webhook URLs, the bot token) come from Vault."""

from __future__ import annotations

from pydantic import BaseModel, Field

KINDS = ("halt", "state", "limit_breach", "fill", "venue_reject", "service_failure", "daily_summary")


class NotifySettings(BaseModel):
    enabled: bool = False
    # Each kind on or off, e.g. QE_NOTIFY__EVENTS__FILL=false.
    events: dict[str, bool] = Field(default_factory=lambda: dict.fromkeys(KINDS, True))
    # KV path (in vault.kv_mount) holding `webhook_urls` (comma-separated) and `telegram_bot_token`.
    vault_path: str = "quantumedge/notify"
    # Webhooks without a secret in their URL (a local relay); Slack-style URLs belong in Vault.
    webhook_urls: list[str] = Field(default_factory=list)
    telegram_chat_ids: list[str] = Field(default_factory=list)
    telegram_api_url: str = "https://api.telegram.org"
    # Token bucket over all messages: `burst` at once, then `per_minute`; the rest are counted and summarised.
    per_minute: float = Field(default=20.0, gt=0)
    burst: int = Field(default=5, ge=1)
    queue_max: int = Field(default=1000, ge=1)
    max_attempts: int = Field(default=4, ge=1)
    timeout_s: float = Field(default=5.0, gt=0)
    retry_base_s: float = Field(default=0.5, gt=0)
    retry_cap_s: float = Field(default=30.0, gt=0)

    def wants(self, kind: str) -> bool:
        return self.events.get(kind, True)

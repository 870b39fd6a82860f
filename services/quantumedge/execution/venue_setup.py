"""Which venue the execution service trades on, built from settings: paper, observe-only, or Binance
testnet/live with the exchange key read from Vault."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from quantumedge.execution.observe import VENUE_NAME as OBSERVE_VENUE
from quantumedge.execution.venue_base import Venue
from quantumedge.execution.venue_paper import paper_venue
from quantumedge.shared.config import ConfigError
from quantumedge.shared.logs import get_logger

if TYPE_CHECKING:
    from quantumedge.execution.venue_binance import BinanceVenue
    from quantumedge.settings import Settings  # the root the runner hands in; no run-time import

# The service's logger name: operators' log filters keep matching after the split.
log = get_logger("quantumedge.execution.service")


def build_venue(
    settings: Settings, venue: Venue | None, credentials: Mapping[str, str] | None, *, observing: bool
) -> tuple[Venue, Any]:
    """The venue to trade on (`venue` itself when a test or tool hands one in) and the secrets handle that
    follows the exchange key's rotations (None unless the key was read from Vault here)."""
    secrets: Any = None
    if venue is None and observing:
        # No client of any venue is built and no exchange key is read. The in-process paper book only
        # keeps the engine's flat position and heartbeats going; no order is ever placed on it.
        venue = paper_venue(settings)
        venue.name = OBSERVE_VENUE
        log.warning(
            "execution is observe-only: nothing is sent to any venue (execution.mode=observe)",
            extra={"configured_venue": settings.execution.venue},
        )
    if venue is None:
        check_venue_allowed(settings)
        if settings.execution.venue == "paper":
            venue = paper_venue(settings)
        else:
            if credentials is None:
                credentials, secrets = load_exchange_credentials(settings)
            venue = binance_venue(settings, credentials)
    return venue, secrets


def load_exchange_credentials(settings: Settings) -> tuple[Mapping[str, str], Any]:
    """The exchange key of the configured venue from Vault (via quantumedge.secrets), and the handle that
    follows its rotations. Raises the secrets module's error, naming the path and reason, never a value."""
    from quantumedge.secrets import paths
    from quantumedge.secrets.require import require_secrets

    secrets = require_secrets(settings, "execution")
    path = paths.exchange_path(settings.execution.venue)
    if path is None:  # pragma: no cover - paper never gets here
        raise ConfigError(f"venue {settings.execution.venue} needs no exchange key")
    return secrets[path], secrets


def binance_venue(settings: Settings, credentials: Mapping[str, str]) -> BinanceVenue:
    # Imported here: a paper or observe run never loads the REST and websocket clients (cold start).
    from quantumedge.execution.venue_binance import BINANCE_URLS, BinanceVenue

    cfg = settings.execution
    rest_default, ws_default = BINANCE_URLS[cfg.venue]
    has_signing_key = any(credentials.get(k) for k in ("api_secret", "private_key", "private_key_pem"))
    if not credentials.get("api_key") or not has_signing_key:
        raise ConfigError(
            f"exchange secret for venue {cfg.venue} lacks api_key and api_secret (or private_key): "
            "store both keys under the venue's path"
        )
    return BinanceVenue(
        cfg.venue,
        cfg.rest_url or rest_default,
        cfg.ws_api_url or ws_default,
        credentials,
        settings.symbols,
        recv_window_ms=cfg.recv_window_ms,
        connect_timeout_s=cfg.connect_timeout_s,
        read_timeout_s=cfg.read_timeout_s,
        max_attempts=cfg.max_attempts,
        max_wait_s=cfg.max_rate_limit_wait_s,
        user_stream=cfg.user_stream,
        exchange_info_ttl_s=cfg.exchange_info_ttl_s,
        unknown_symbol_ttl_s=cfg.unknown_symbol_ttl_s,
        stream_options={
            "max_connection_age_s": cfg.stream_max_connection_age_s,
            "watchdog_interval_s": cfg.stream_watchdog_interval_s,
            "watchdog_timeout_s": cfg.stream_watchdog_timeout_s,
        },
    )


def check_venue_allowed(settings: Settings) -> None:
    cfg = settings.execution
    if cfg.venue == "live" and not cfg.allow_live:
        raise ConfigError(
            "execution.venue=live needs execution.allow_live=true as well (QE_EXECUTION__ALLOW_LIVE): "
            "live trading is never on by one setting alone"
        )
    if settings.behaviours.paper_venue_only and cfg.venue != "paper":
        raise ConfigError(f"embedded mode runs the paper venue only (execution.venue={cfg.venue})")

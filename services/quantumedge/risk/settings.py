"""Settings of the risk service (section `risk` of the configuration).

`limits` are only the starting values: once an operator calls UpdateLimits, the limits record on
the compacted control topic wins (it survives restarts). Everything else here is policy that is
changed by configuration and a restart.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from quantumedge.risk.moderator_settings import ModeratorSettings

HaltingLimit = Literal[
    "daily_loss_limit",
    "max_drawdown_fraction",
    "max_loss_streak",
    "max_orders_per_window",
    "max_gross_exposure",
    "max_open_positions",
]


class LimitDefaults(BaseModel):
    """Starting values of quantumedge.v1.RiskLimits (same field names; see risk.proto for meanings)."""

    # p_up of the chosen horizon is a take-profit probability (labels.py), not a side's odds: no floor.
    min_confidence: float = 0.0
    min_edge: float = 0.0
    # Entries need the best horizon's expected return net of fees above this (bps).
    min_expected_return_bps: float = 2.0
    # The cap of the edge-and-volatility sizing (a fraction of equity).
    risk_fraction: float = 0.10
    max_order_notional: float = 1_000.0
    max_symbol_notional: float = 2_000.0
    max_gross_exposure: float = 5_000.0
    max_open_positions: int = 2
    daily_loss_limit: float = 500.0
    # A loss today past this fraction of daily_loss_limit puts the account in REDUCING (reason soft_loss).
    soft_daily_loss_fraction: float = 0.75
    max_drawdown_fraction: float = 0.10
    max_loss_streak: int = 5
    max_orders_per_window: int = 30
    order_window_ns: int = 60_000_000_000
    cooldown_after_loss_ns: int = 30_000_000_000
    cooldown_after_exit_ns: int = 5_000_000_000
    max_data_age_ns: int = 5_000_000_000
    max_spread_bps: float = 20.0
    min_depth_notional: float = 0.0
    # The trade plan the labels score (training reads these same settings): take-profit, stop, and a time
    # stop that is the chosen horizon's (this one applies only to a signal without a horizon).
    take_profit_bps: float = 80.0
    stop_loss_bps: float = 40.0
    time_stop_ns: int = 1_800_000_000_000


class HorizonRule(BaseModel):
    """What one horizon's prediction must show for an entry (conviction = p of the entry's side)."""

    min_confidence: float = 0.5
    min_edge: float = 0.0


class SymbolFilter(BaseModel):
    """The venue's filters for one symbol (Binance LOT_SIZE / PRICE_FILTER / NOTIONAL)."""

    step_size: float = 0.00001
    tick_size: float = 0.01
    min_notional: float = 5.0


def _default_filters() -> dict[str, SymbolFilter]:
    return {
        "BTCUSDT": SymbolFilter(step_size=0.00001, tick_size=0.01, min_notional=5.0),
        "ETHUSDT": SymbolFilter(step_size=0.0001, tick_size=0.01, min_notional=5.0),
    }


def _default_regimes() -> dict[str, list[str]]:
    # The models see the regime's features and price it into their expected return, so every tagged
    # regime may open either way; REGIME_UNSPECIFIED is absent on purpose: an untagged signal opens nothing.
    both: list[str] = ["BUY", "SELL"]
    return {
        name: list(both)
        for name in (
            "REGIME_LOW_VOL_TREND_UP",
            "REGIME_LOW_VOL_TREND_DOWN",
            "REGIME_LOW_VOL_RANGE",
            "REGIME_HIGH_VOL_TREND_UP",
            "REGIME_HIGH_VOL_TREND_DOWN",
            "REGIME_HIGH_VOL_RANGE",
        )
    }


class RiskSettings(BaseModel):
    # Equity assumed until an execution report states the venue's equity.
    starting_equity: float = 10_000.0
    limits: LimitDefaults = Field(default_factory=LimitDefaults)

    # -- decision policy ---------------------------------------------------------------------------
    # Per-horizon rules on top of the ensemble's min_confidence / min_edge; a listed horizon must be
    # present in the signal. Empty = only the ensemble check.
    horizon_rules: dict[int, HorizonRule] = Field(default_factory=dict)
    # Regime name (quantumedge.v1.Regime) -> sides that may OPEN a position in it. Exits are always allowed.
    regime_sides: dict[str, list[Literal["BUY", "SELL"]]] = Field(default_factory=_default_regimes)
    # Spot venues cannot sell what they do not hold, so SELL signals only close longs unless this is on.
    allow_short: bool = False
    # Add to an open position on a same-side signal (otherwise it is rejected as already positioned).
    allow_pyramiding: bool = False
    # A signal closes a position only when its horizon's expected return has turned below
    # -exit_hysteresis_bps (not on a mere flip of sign) and the position is at least min_hold_ns old;
    # otherwise the take-profit, the stop and the time stop do their work.
    exit_hysteresis_bps: float = Field(default=15.0, ge=0.0)
    min_hold_ns: int = Field(default=120_000_000_000, ge=0)
    # Sizing: this fraction of the Kelly fraction (expected return / variance over the horizon),
    # capped by limits.risk_fraction and every notional cap.
    kelly_fraction: float = Field(default=0.25, gt=0.0, le=1.0)
    # Drift-marked signals move the symbol to exits only (TradingState REDUCING, reason model_drift).
    exits_only_on_drift: bool = True
    # A symbol whose market data flows but which got no signal for this long goes to REDUCING (reason
    # model_stale) until a fresh signal comes; 0 = no check.
    model_stale_after_ns: int = Field(default=600_000_000_000, ge=0)
    # This many venue rejections in a row on a symbol, or one operator alert from execution (an order's outcome
    # unknown past its bound), put the symbol in REDUCING (reason venue_failing) until a fill; 0 = never.
    venue_reject_streak: int = Field(default=3, ge=0)
    # market: take at the touch (taker fee). limit: a marketable limit at the touch with entry_time_in_force.
    # limit_maker: post-only (Binance LIMIT_MAKER) at the own side's touch (the bid for a BUY), paying the maker
    # fee; the venue refuses it (-2010) if the book has crossed it by the time it arrives, and an unfilled
    # remainder is cancelled after entry_maker_ttl_ns.
    entry_order_type: Literal["market", "limit", "limit_maker"] = "market"
    entry_time_in_force: Literal["GTC", "IOC", "FOK"] = "IOC"
    entry_maker_ttl_ns: int = Field(default=30_000_000_000, ge=0)
    trailing_stop_bps: float = 0.0

    # -- venue filters -----------------------------------------------------------------------------
    symbol_filters: dict[str, SymbolFilter] = Field(default_factory=_default_filters)
    # Used for a symbol not listed above; execution re-applies the venue's real exchangeInfo filters.
    default_filter: SymbolFilter = Field(default_factory=SymbolFilter)

    # -- limits behaviour --------------------------------------------------------------------------
    # Limits whose breach halts trading automatically (the others refuse entries while breached).
    # A typo here must fail at start-up, not silently leave a limit without its automatic halt.
    halt_on: list[HaltingLimit] = Field(
        default_factory=lambda: ["daily_loss_limit", "max_drawdown_fraction", "max_loss_streak"]
    )
    auto_halt_cancel_open_orders: bool = True
    auto_halt_flatten: bool = False
    # Depth guard: notional within this band around mid on the side an entry takes.
    depth_band_bps: float = 50.0
    # Fail closed until at least one execution report (or a rebuilt history) has been seen.
    require_execution_state: bool = True
    # Fail closed when execution has been silent this long (execution heartbeats every
    # execution.heartbeat_interval_s, 5 s by default, which must stay well below this); 0 = no check.
    max_execution_silence_ns: int = 30_000_000_000
    # Signals older than this (created_time_ns vs now) are rejected; 0 = no check.
    max_signal_age_ns: int = 10_000_000_000
    # An entry whose signal's market time is ahead of risk's book for the symbol by more than this is held
    # until the book catches up (risk/book_sync.py), so its price, take-profit and stop are not stale; -1 = off.
    book_sync_allowance_ns: int = Field(default=250_000_000, ge=-1)
    # Refused at once (book_behind_signal) when the book is further behind than this in market time; 0 = no bound.
    book_sync_max_lag_ns: int = Field(default=10_000_000_000, ge=0)
    # A held signal is refused (book_behind_signal) after this long by risk's clock: the feed has stalled.
    book_sync_max_wait_ns: int = Field(default=2_000_000_000, gt=0)
    # An entry whose signal is this far behind risk's book (market time) is refused (signal_behind_book): it was
    # predicted on a market that has moved on; 0 = no check. Market time: with an accelerated synthetic feed on
    # the wall clock (`serve` with synthetic_speed > 1) scale it by the speed, or 5 s of market is milliseconds.
    book_sync_max_signal_lag_ns: int = Field(default=5_000_000_000, ge=0)
    # Held signals in all (only the newest per symbol and horizon is kept).
    book_sync_max_held: int = Field(default=64, gt=0)
    # Approved entries not yet seen in reports count towards exposure this long.
    pending_intent_ttl_ns: int = 30_000_000_000
    # Age of market data measured from the event's receive time ("event") or from when risk consumed it
    # ("arrival", for replays that keep historical timestamps).
    freshness_clock: Literal["event", "arrival"] = "event"

    # The optional LLM risk moderator (docs/moderator.md); off by default.
    moderator: ModeratorSettings = Field(default_factory=ModeratorSettings)

    # -- service -----------------------------------------------------------------------------------
    decision_index_size: int = 10_000
    # Reading control.v1 and execution.reports.v1 to their ends on start may take this long.
    rebuild_timeout_s: float = 120.0
    report_dedupe_size: int = 200_000
    # The ledger checkpoint on risk.checkpoint.v1 (start-up restores it and replays only the reports after it):
    # written after this many reports or this many seconds with new reports, whichever first, and on a graceful
    # stop. 0 reports = never written (every start replays the whole reports topic).
    checkpoint_every_reports: int = Field(default=10_000, ge=0)
    checkpoint_every_s: float = Field(default=300.0, gt=0)

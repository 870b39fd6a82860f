"""The live RiskLimits: defaults from settings, validation and partial updates (no I/O)."""

from __future__ import annotations

import math

from quantumedge.risk.settings import RiskSettings
from quantumedge.v1 import risk_pb2

LIMIT_FIELDS: tuple[str, ...] = tuple(f.name for f in risk_pb2.RiskLimits.DESCRIPTOR.fields)
MAX_DATA_AGE_NS = 3_600_000_000_000


class InvalidLimitsError(ValueError):
    """A limits update that makes no sense; the message names the field."""


def default_limits(settings: RiskSettings) -> risk_pb2.RiskLimits:
    return risk_pb2.RiskLimits(**settings.limits.model_dump())


def validate_limits(limits: risk_pb2.RiskLimits) -> None:
    """Raise InvalidLimitsError naming the first field that is out of range.

    A zero disables a limit only where that is safe: loss streak, orders per window, cooldowns,
    spread, depth and protection. Loss, drawdown, exposure and data age can never be switched off.
    """
    for field in LIMIT_FIELDS:
        value = getattr(limits, field)
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidLimitsError(f"{field} must be a finite number, got {value}")
        if value < 0:
            raise InvalidLimitsError(f"{field} must not be negative, got {value}")

    def require(ok: bool, field: str, rule: str) -> None:
        if not ok:
            raise InvalidLimitsError(f"{field} {rule}, got {getattr(limits, field)}")

    require(limits.min_confidence <= 1.0, "min_confidence", "must be within [0, 1]")
    require(limits.min_edge <= 1.0, "min_edge", "must be within [0, 1]")
    require(0.0 < limits.risk_fraction <= 1.0, "risk_fraction", "must be within (0, 1]")
    require(limits.max_order_notional > 0, "max_order_notional", "must be > 0")
    require(limits.max_symbol_notional > 0, "max_symbol_notional", "must be > 0")
    require(limits.max_gross_exposure > 0, "max_gross_exposure", "must be > 0")
    require(limits.max_open_positions >= 1, "max_open_positions", "must be >= 1")
    require(limits.daily_loss_limit > 0, "daily_loss_limit", "must be > 0")
    require(0.0 < limits.max_drawdown_fraction <= 1.0, "max_drawdown_fraction", "must be within (0, 1]")
    require(limits.max_data_age_ns > 0, "max_data_age_ns", "must be > 0 (the stale-data guard cannot be disabled)")
    require(
        limits.max_orders_per_window == 0 or limits.order_window_ns > 0,
        "order_window_ns",
        "must be > 0 when max_orders_per_window is set",
    )
    require(limits.max_data_age_ns <= MAX_DATA_AGE_NS, "max_data_age_ns", "must be <= 1 hour (older data is no guard)")
    require(
        limits.max_orders_per_window == 0 or limits.order_window_ns >= 1_000_000_000,
        "order_window_ns",
        "must be >= 1 s when max_orders_per_window is set (a shorter window limits nothing)",
    )
    require(
        limits.soft_daily_loss_fraction < 1.0,
        "soft_daily_loss_fraction",
        "must be within [0, 1) (a fraction of daily_loss_limit reached before the hard halt; 0 = off)",
    )
    require(limits.stop_loss_bps < 10_000, "stop_loss_bps", "must be < 10000 (a stop below zero)")
    require(limits.min_expected_return_bps < 10_000, "min_expected_return_bps", "must be < 10000")
    require(limits.take_profit_bps < 10_000, "take_profit_bps", "must be < 10000 (a short's target below zero)")


def merge_limits(
    current: risk_pb2.RiskLimits, update: risk_pb2.RiskLimits, mask: list[str] | tuple[str, ...]
) -> risk_pb2.RiskLimits:
    """Apply `update` over `current` for the fields in `mask`, validated.

    The mask is required: a message that leaves a field out reads it as zero, and zero switches several
    guards off, so "replace everything" must be said by naming every field."""
    if not mask:
        raise InvalidLimitsError(
            "update_mask is required: name the fields to change (all of them to replace every limit), "
            "so an omitted field is never read as 0 and a guard silently switched off"
        )
    unknown = [path for path in mask if path not in LIMIT_FIELDS]
    if unknown:
        raise InvalidLimitsError(f"update_mask: unknown field {unknown[0]!r} (known: {', '.join(LIMIT_FIELDS)})")
    merged = risk_pb2.RiskLimits()
    merged.CopyFrom(current)
    for path in mask:
        setattr(merged, path, getattr(update, path))
    validate_limits(merged)
    return merged

"""Limits updates: nonsense is refused with the field's name; partial updates touch only their fields."""

from __future__ import annotations

import math

import pytest

from quantumedge.risk.domain.limit_config import (
    LIMIT_FIELDS,
    InvalidLimitsError,
    default_limits,
    merge_limits,
    validate_limits,
)
from quantumedge.risk.settings import RiskSettings
from quantumedge.v1 import risk_pb2


def test_defaults_are_valid() -> None:
    validate_limits(default_limits(RiskSettings()))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_order_notional", -5.0, "max_order_notional must not be negative"),
        ("max_order_notional", 0.0, "max_order_notional must be > 0"),
        ("risk_fraction", 1.5, "risk_fraction must be within (0, 1]"),
        ("max_drawdown_fraction", 2.0, "max_drawdown_fraction must be within (0, 1]"),
        ("min_confidence", 1.2, "min_confidence must be within [0, 1]"),
        ("daily_loss_limit", 0.0, "daily_loss_limit must be > 0"),
        ("max_data_age_ns", 0, "max_data_age_ns must be > 0"),
        ("max_open_positions", 0, "max_open_positions must be >= 1"),
        ("max_gross_exposure", math.inf, "max_gross_exposure must be a finite number"),
        ("max_spread_bps", math.nan, "max_spread_bps must be a finite number"),
        ("stop_loss_bps", 10_000.0, "stop_loss_bps must be < 10000"),
    ],
)
def test_nonsense_values_name_their_field(field: str, value: float, message: str) -> None:
    current = default_limits(RiskSettings())
    update = risk_pb2.RiskLimits()
    setattr(update, field, value)
    with pytest.raises(InvalidLimitsError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        merge_limits(current, update, [field])


def test_window_required_when_orders_per_window_is_set() -> None:
    current = default_limits(RiskSettings())
    update = risk_pb2.RiskLimits(max_orders_per_window=5, order_window_ns=0)
    with pytest.raises(InvalidLimitsError, match="order_window_ns"):
        merge_limits(current, update, ["max_orders_per_window", "order_window_ns"])


def test_unknown_mask_path_is_refused() -> None:
    with pytest.raises(InvalidLimitsError, match="update_mask: unknown field 'max_leverage'"):
        merge_limits(default_limits(RiskSettings()), risk_pb2.RiskLimits(), ["max_leverage"])


def test_mask_updates_only_named_fields_and_replacing_all_means_naming_all() -> None:
    current = default_limits(RiskSettings())
    merged = merge_limits(current, risk_pb2.RiskLimits(daily_loss_limit=123.0), ["daily_loss_limit"])
    assert merged.daily_loss_limit == 123.0
    assert merged.max_order_notional == current.max_order_notional
    # No mask is refused: fields left out would read as 0 and switch guards off (loss streak, over-trading,
    # spread, stops) without anyone having asked for it.
    with pytest.raises(InvalidLimitsError, match="update_mask is required"):
        merge_limits(current, risk_pb2.RiskLimits(daily_loss_limit=123.0, max_loss_streak=0), [])
    full = risk_pb2.RiskLimits()
    full.CopyFrom(current)
    full.max_open_positions = 7
    assert merge_limits(current, full, list(LIMIT_FIELDS)).max_open_positions == 7

"""Human units: durations in ms or s, money and quantities to the venue's precision. Pure."""

from __future__ import annotations

import math

# Binance spot: quote amounts (USDT) are shown to the cent (the tick of the major pairs), base quantities to
# the 8 decimals of the asset's precision.
QUOTE_DECIMALS = 2
BASE_DECIMALS = 8


def duration(ns: float) -> str:
    """1_500_000 -> "1.5 ms", 90e9 -> "90 s", 7200e9 -> "2 h"; 0 -> "0" (a disabled window)."""
    if not ns:
        return "0"
    if not math.isfinite(ns):
        return str(ns)
    sign, ns = ("-" if ns < 0 else ""), abs(ns)
    if ns < 1e6:
        return f"{sign}{ns / 1e3:g} µs"
    if ns < 1e9:
        return f"{sign}{_trim(ns / 1e6)} ms"
    seconds = ns / 1e9
    if seconds < 600:
        return f"{sign}{_trim(seconds)} s"
    if seconds < 7200:
        return f"{sign}{_trim(seconds / 60)} min"
    return f"{sign}{_trim(seconds / 3600)} h"


def money(value: float, decimals: int = QUOTE_DECIMALS, signed: bool = False) -> str:
    """A quote amount rounded to the venue's precision, with thousands separators."""
    text = f"{value:+,.{decimals}f}" if signed else f"{value:,.{decimals}f}"
    return "0.00" if text in ("-0.00", "+0.00") and not signed else text


def quantity(value: float, decimals: int = BASE_DECIMALS) -> str:
    """A base-asset quantity to the asset's precision, trailing zeros dropped."""
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def fraction(value: float) -> str:
    return f"{value * 100:.2f} %"


def _trim(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0") if value < 100 else f"{value:.0f}"


def limit_value(name: str, value: float) -> str:
    """A RiskLimits field for people: *_ns as durations, fractions as %, notionals as money."""
    if name.endswith("_ns"):
        return duration(value)
    if name.endswith("_fraction") or name in ("risk_fraction",):
        return fraction(value)
    if "notional" in name or name in ("daily_loss_limit", "max_gross_exposure"):
        return money(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return f"{value:g}"

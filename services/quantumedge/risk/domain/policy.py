"""Decision policy: what a signal asks for (entry, exit or nothing), sizing and protection (no I/O)."""

from __future__ import annotations

import hashlib
import math
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from quantumedge.risk.settings import RiskSettings, SymbolFilter
from quantumedge.v1 import common_pb2, risk_pb2, signal_pb2

# Fixed namespace: the same signal id gives the same intent id in every process, run and backtest.
ID_NAMESPACE = uuid.UUID("5b0d7c1e-6a53-4c8e-9f3e-2f1d0c9b7a61")
# The namespace's SHA-1 prefix, hashed once: each id then hashes only its name (hot in a backtest).
_NAMESPACE_SHA1 = hashlib.sha1(ID_NAMESPACE.bytes, usedforsecurity=False)


def uuid5_str(name: str) -> str:
    """str(uuid.uuid5(ID_NAMESPACE, name)), byte for byte, without building a UUID object."""
    h = _NAMESPACE_SHA1.copy()
    h.update(name.encode())
    b = bytearray(h.digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50  # version 5
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = b.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


SIDE_NAMES = {common_pb2.SIDE_BUY: "BUY", common_pb2.SIDE_SELL: "SELL"}


def intent_id_for(signal_id: str) -> str:
    """Deterministic: a redelivered signal yields the same intent id, hence the same client order id."""
    return uuid5_str(f"intent:{signal_id}")


def decision_id_for(source: str, source_id: str) -> str:
    return uuid5_str(f"decision:{source}:{source_id}")


def opposite(side: int) -> int:
    return common_pb2.SIDE_SELL if side == common_pb2.SIDE_BUY else common_pb2.SIDE_BUY


def signal_side(signal: signal_pb2.Signal) -> int:
    if signal.edge > 0:
        return common_pb2.SIDE_BUY
    if signal.edge < 0:
        return common_pb2.SIDE_SELL
    return common_pb2.SIDE_UNSPECIFIED


def conviction(side: int, p_up: float) -> float:
    """Probability of the move `side` bets on."""
    return p_up if side == common_pb2.SIDE_BUY else 1.0 - p_up


@dataclass
class Action:
    kind: int  # risk_pb2.INTENT_KIND_*; UNSPECIFIED = do nothing
    side: int = common_pb2.SIDE_UNSPECIFIED
    reasons: list[str] = field(default_factory=list)
    prediction: signal_pb2.HorizonPrediction | None = None  # the horizon an entry's plan follows


@dataclass(frozen=True)
class Holding:
    """What risk knows of an open position's plan: when it opened and its time stop (0 = unknown)."""

    opened_ns: int
    time_stop_ns: int = 0


def best_prediction(signal: signal_pb2.Signal) -> signal_pb2.HorizonPrediction | None:
    """The horizon whose long has the highest expected return net of fees (ties: the shorter one)."""
    preds = sorted(signal.predictions, key=lambda p: (-p.expected_return_bps, p.horizon))
    return preds[0] if preds else None


def _held_prediction(signal: signal_pb2.Signal, holding: Holding | None) -> signal_pb2.HorizonPrediction | None:
    if holding is not None and holding.time_stop_ns:
        for p in signal.predictions:
            if p.horizon * 60_000_000_000 == holding.time_stop_ns:
                return p
    return best_prediction(signal)


def classify(
    signal: signal_pb2.Signal,
    position_qty: float,
    limits: risk_pb2.RiskLimits,
    settings: RiskSettings,
    holding: Holding | None = None,
    now_ns: int = 0,
) -> Action:
    """Entry, exit or nothing, with the reasons. Exits need no conviction: they only reduce risk.

    A position is left to its protection (take-profit, stop, time stop) unless the signal has turned
    clearly against it (hysteresis) after a minimum hold: a flip of sign alone never closes it."""
    if position_qty != 0:
        held = common_pb2.SIDE_BUY if position_qty > 0 else common_pb2.SIDE_SELL
        pred = _held_prediction(signal, holding)
        if pred is not None:
            # The models price longs: a short's expected return is the long's, negated.
            expected = pred.expected_return_bps if held == common_pb2.SIDE_BUY else -pred.expected_return_bps
            held_ns = now_ns - holding.opened_ns if holding is not None else 0
            if expected < -settings.exit_hysteresis_bps and (holding is None or held_ns >= settings.min_hold_ns):
                return Action(
                    risk_pb2.INTENT_KIND_EXIT,
                    opposite(held),
                    [
                        f"exit: signal_reversed: h{pred.horizon} expected {expected:+.2f} bps"
                        f" < -{settings.exit_hysteresis_bps:g} against {SIDE_NAMES[held]} {position_qty:g}"
                    ],
                )
        if not settings.allow_pyramiding:
            return Action(
                risk_pb2.INTENT_KIND_UNSPECIFIED,
                reasons=[f"already_positioned: {SIDE_NAMES[held]} {position_qty:g}; the plan's exits run it"],
            )
    pred = best_prediction(signal)
    if pred is None:
        return Action(risk_pb2.INTENT_KIND_UNSPECIFIED, reasons=["no_prediction: the signal has no horizon"])
    # Labels score long trades (training/labels.py): signals open longs only; shorts are manual.
    side = common_pb2.SIDE_BUY
    return Action(risk_pb2.INTENT_KIND_ENTRY, side, entry_policy_reasons(signal, side, limits, settings, pred), pred)


def entry_policy_reasons(
    signal: signal_pb2.Signal,
    side: int,
    limits: risk_pb2.RiskLimits,
    settings: RiskSettings,
    pred: signal_pb2.HorizonPrediction | None = None,
) -> list[str]:
    """Every policy rule an entry on `side` fails (empty = the policy allows it)."""
    reasons: list[str] = []
    name = SIDE_NAMES[side]
    pred = pred or best_prediction(signal)
    if pred is None:
        return ["no_prediction: the signal has no horizon"]
    if pred.expected_return_bps < limits.min_expected_return_bps:
        reasons.append(
            f"min_expected_return: best h{pred.horizon} expected {pred.expected_return_bps:+.2f} bps"
            f" < {limits.min_expected_return_bps:.2f} net of fees"
        )
    conv = conviction(side, pred.p_up)
    if conv < limits.min_confidence:
        reasons.append(f"min_confidence: h{pred.horizon} {name} p {conv:.4f} < {limits.min_confidence:.4f}")
    if abs(signal.edge) < limits.min_edge:
        reasons.append(f"min_edge: |edge| {abs(signal.edge):.4f} < {limits.min_edge:.4f}")
    by_horizon = {p.horizon: p for p in signal.predictions}
    for horizon, rule in sorted(settings.horizon_rules.items()):
        hp = by_horizon.get(horizon)
        if hp is None:
            reasons.append(f"horizon_missing: h{horizon} has no prediction in the signal")
            continue
        conv_h = conviction(side, hp.p_up)
        edge_h = (hp.p_up - 0.5) * 2.0 * (1 if side == common_pb2.SIDE_BUY else -1)
        if conv_h < rule.min_confidence:
            reasons.append(f"horizon_min_confidence: h{horizon} {conv_h:.4f} < {rule.min_confidence:.4f}")
        if edge_h < rule.min_edge:
            reasons.append(f"horizon_min_edge: h{horizon} {edge_h:+.4f} < {rule.min_edge:.4f}")
    regime = common_pb2.Regime.Name(signal.regime)
    if name not in settings.regime_sides.get(regime, []):
        reasons.append(f"regime: {regime} does not allow {name} entries")
    return reasons


def edge_fraction(
    pred: signal_pb2.HorizonPrediction | None, signal: signal_pb2.Signal, settings: RiskSettings, cap: float
) -> tuple[float, str]:
    """Fraction of equity for an entry: a fraction of Kelly (expected return over the variance of the
    horizon's move, from the signal's volatility), capped. (fraction, what bound it)."""
    if pred is None or signal.volatility_bps <= 0 or signal.row_interval_s <= 0 or pred.horizon <= 0:
        return cap, "risk_fraction"
    rows = pred.horizon * 60.0 / signal.row_interval_s
    variance = (signal.volatility_bps / 1e4) ** 2 * rows
    kelly = max(0.0, pred.expected_return_bps / 1e4) / variance
    fraction = settings.kelly_fraction * kelly
    return (fraction, "edge_volatility") if fraction < cap else (cap, "risk_fraction")


# -- sizing ------------------------------------------------------------------------------------------
def _decimals(step: float) -> int:
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -int(exponent))


def floor_to_step(value: float, step: float) -> float:
    """Round down to a multiple of step (exactly representable to step's decimals)."""
    if step <= 0:
        return value
    units = math.floor(value / step + 1e-9)
    return round(units * step, _decimals(step))


def round_to_tick(price: float, tick: float) -> float:
    if tick <= 0:
        return price
    return round(round(price / tick) * tick, _decimals(tick))


@dataclass(frozen=True)
class Sizing:
    quantity: float
    notional: float
    binding: str  # which cap decided the size
    reason: str = ""  # non-empty = rejected


def size_entry(
    price: float,
    equity: float,
    limits: risk_pb2.RiskLimits,
    symbol_headroom: float,
    gross_headroom: float,
    filt: SymbolFilter,
    fraction: tuple[float, str] | None = None,
) -> Sizing:
    """A fraction of equity (by default limits.risk_fraction), capped by every notional limit, rounded
    down to the venue's step."""
    frac, frac_name = fraction if fraction is not None else (limits.risk_fraction, "risk_fraction")
    caps = [
        (frac_name, equity * frac),
        ("max_order_notional", limits.max_order_notional),
        ("max_symbol_notional", symbol_headroom),
        ("max_gross_exposure", gross_headroom),
    ]
    binding, budget = min(caps, key=lambda c: c[1])
    if price <= 0:
        return Sizing(0.0, 0.0, binding, "no reference price to size with")
    qty = floor_to_step(max(0.0, budget) / price, filt.step_size)
    notional = qty * price
    if qty <= 0 or notional < filt.min_notional:
        return Sizing(
            qty,
            notional,
            binding,
            f"{binding}: {max(0.0, budget):.2f} available is below the venue minimum notional {filt.min_notional:g}",
        )
    return Sizing(qty, notional, binding)


def protection(side: int, reference: float, limits: risk_pb2.RiskLimits, tick: float) -> tuple[float, float]:
    """Take-profit and stop-loss prices for an entry (0 = none)."""
    sign = 1.0 if side == common_pb2.SIDE_BUY else -1.0
    tp = (
        round_to_tick(reference * (1 + sign * limits.take_profit_bps / 10_000), tick) if limits.take_profit_bps else 0.0
    )
    sl = round_to_tick(reference * (1 - sign * limits.stop_loss_bps / 10_000), tick) if limits.stop_loss_bps else 0.0
    return tp, sl

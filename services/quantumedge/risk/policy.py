"""Decision policy: what a signal asks for (entry, exit or nothing), sizing and protection (no I/O)."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from quantumedge.risk.settings import RiskSettings, SymbolFilter
from quantumedge.v1 import common_pb2, risk_pb2, signal_pb2

# Fixed namespace: the same signal id gives the same intent id in every process, run and backtest.
ID_NAMESPACE = uuid.UUID("5b0d7c1e-6a53-4c8e-9f3e-2f1d0c9b7a61")

SIDE_NAMES = {common_pb2.SIDE_BUY: "BUY", common_pb2.SIDE_SELL: "SELL"}


def intent_id_for(signal_id: str) -> str:
    """Deterministic: a redelivered signal yields the same intent id, hence the same client order id."""
    return str(uuid.uuid5(ID_NAMESPACE, f"intent:{signal_id}"))


def decision_id_for(source: str, source_id: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"decision:{source}:{source_id}"))


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


def classify(
    signal: signal_pb2.Signal, position_qty: float, limits: risk_pb2.RiskLimits, settings: RiskSettings
) -> Action:
    """Entry, exit or nothing, with the reasons. Exits need no conviction: they only reduce risk."""
    if position_qty != 0:
        held = common_pb2.SIDE_BUY if position_qty > 0 else common_pb2.SIDE_SELL
        directional_edge = signal.edge if held == common_pb2.SIDE_BUY else -signal.edge
        if directional_edge < settings.exit_below_edge:
            why = "flipped" if directional_edge < 0 else "weakened"
            return Action(
                risk_pb2.INTENT_KIND_EXIT,
                opposite(held),
                [f"exit: signal {why} (edge {signal.edge:+.4f}) against {SIDE_NAMES[held]} position {position_qty:g}"],
            )
        if not settings.allow_pyramiding:
            return Action(
                risk_pb2.INTENT_KIND_UNSPECIFIED,
                reasons=[f"already positioned: {SIDE_NAMES[held]} {position_qty:g}, signal agrees; no pyramiding"],
            )
    side = signal_side(signal)
    if side == common_pb2.SIDE_UNSPECIFIED:
        return Action(risk_pb2.INTENT_KIND_UNSPECIFIED, reasons=["no direction: edge is 0"])
    return Action(risk_pb2.INTENT_KIND_ENTRY, side, entry_policy_reasons(signal, side, limits, settings))


def entry_policy_reasons(
    signal: signal_pb2.Signal, side: int, limits: risk_pb2.RiskLimits, settings: RiskSettings
) -> list[str]:
    """Every policy rule an entry on `side` fails (empty = the policy allows it)."""
    reasons: list[str] = []
    name = SIDE_NAMES[side]
    if side == common_pb2.SIDE_SELL and not settings.allow_short:
        reasons.append("allow_short: SELL signal with no position to close and shorts are disabled")
    conv = conviction(side, signal.confidence)
    if conv < limits.min_confidence:
        reasons.append(f"min_confidence: {name} confidence {conv:.4f} < {limits.min_confidence:.4f}")
    if abs(signal.edge) < limits.min_edge:
        reasons.append(f"min_edge: |edge| {abs(signal.edge):.4f} < {limits.min_edge:.4f}")
    by_horizon = {p.horizon: p for p in signal.predictions}
    for horizon, rule in sorted(settings.horizon_rules.items()):
        pred = by_horizon.get(horizon)
        if pred is None:
            reasons.append(f"horizon {horizon}: no prediction in the signal")
            continue
        conv_h = conviction(side, pred.p_up)
        edge_h = (pred.p_up - 0.5) * 2.0 * (1 if side == common_pb2.SIDE_BUY else -1)
        if conv_h < rule.min_confidence:
            reasons.append(f"horizon {horizon} min_confidence: {conv_h:.4f} < {rule.min_confidence:.4f}")
        if edge_h < rule.min_edge:
            reasons.append(f"horizon {horizon} min_edge: {edge_h:+.4f} < {rule.min_edge:.4f}")
    regime = common_pb2.Regime.Name(signal.regime)
    if name not in settings.regime_sides.get(regime, []):
        reasons.append(f"regime: {regime} does not allow {name} entries")
    return reasons


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
) -> Sizing:
    """Fraction of equity, capped by every notional limit, rounded down to the venue's step."""
    caps = [
        ("risk_fraction", equity * limits.risk_fraction),
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

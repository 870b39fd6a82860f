"""The LLM risk moderator's policy: when to ask, what to send, and how a verdict (or its absence) changes a decision.

Pure domain code: no HTTP, clock or threads. The adapter (quantumedge.risk.moderator_client) makes the call and
hands back an Outcome; everything here is decided from that Outcome and the engine's state. Only ENTRY intents are
ever moderated: exits, protection and flattening only reduce risk and never wait on a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from quantumedge.risk.domain import policy
from quantumedge.risk.moderator_settings import ModeratorSettings
from quantumedge.v1 import common_pb2, execution_pb2, risk_pb2, signal_pb2

if TYPE_CHECKING:
    from quantumedge.risk.domain.engine import RiskEngine

# Outcome statuses from the adapter; each non-verdict one maps to a reason code.
FAILURE_CODES = {
    "timeout": "moderator_timeout",
    "error": "moderator_error",
    "malformed": "moderator_malformed",
    "rate_limited": "moderator_rate_limited",
}

SYSTEM_PROMPT = (
    "You are the risk moderator of an automated crypto spot trading system. You review one proposed ENTRY order "
    "that already passed every hard risk limit. Answer with one JSON object only, no prose: "
    '{"verdict": "allow" | "deny" | "reduce", "size_factor": number in (0, 1] (required for reduce, the fraction '
    'of the proposed quantity to keep), "reason": short string}. Deny or reduce when the context suggests the '
    "entry is unusually risky; otherwise allow."
)


class Verdict(BaseModel):
    """The structured answer the model must give; anything else is malformed."""

    model_config = ConfigDict(extra="forbid")

    verdict: Literal["allow", "deny", "reduce"]
    size_factor: float = Field(default=1.0, gt=0.0, le=1.0)
    reason: str = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _reduce_reduces(self) -> Verdict:
        if self.verdict == "reduce" and self.size_factor >= 1.0:
            raise ValueError("a reduce verdict needs size_factor < 1")
        return self


@dataclass(frozen=True)
class Outcome:
    """What the adapter got: a validated verdict, or why there is none (timeout / error / malformed / rate_limited)."""

    status: str
    verdict: Verdict | None = None
    detail: str = ""
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def is_moderated(decision: risk_pb2.RiskDecision) -> bool:
    """Only approved entries are reviewed."""
    return decision.approved and decision.intent.kind == risk_pb2.INTENT_KIND_ENTRY


def skip_reason(signal: signal_pb2.Signal, settings: ModeratorSettings) -> str:
    """A reason (code first) to approve without asking, or "" to ask."""
    horizons = [p.horizon for p in signal.predictions if p.horizon > 0]
    if horizons:
        shortest_ms = min(horizons) * settings.horizon_unit_ns / 1e6
        if shortest_ms < settings.budget_ms:
            return (
                f"moderator_skipped_short_horizon: shortest horizon {shortest_ms:.0f} ms < budget"
                f" {settings.budget_ms:.0f} ms"
            )
    return ""


def build_context(
    signal: signal_pb2.Signal,
    decision: risk_pb2.RiskDecision,
    status: risk_pb2.RiskServiceGetStatusResponse,
    fills: list[dict[str, Any]],
) -> dict[str, Any]:
    """The compact context sent to the model (documented in docs/moderator.md). No keys, ids or account names."""
    intent = decision.intent
    return {
        "symbol": signal.symbol,
        "side": policy.SIDE_NAMES.get(intent.side, "?"),
        "quantity": intent.quantity,
        "notional": round(intent.quantity * intent.reference_price, 2),
        "signal": {
            "edge": round(signal.edge, 4),
            "confidence": round(signal.confidence, 4),
            "horizons": [{"horizon": p.horizon, "p_up": round(p.p_up, 4)} for p in signal.predictions],
        },
        "features": {"mid_price": signal.mid_price, "spread_bps": round(signal.spread_bps, 2)},
        "regime": common_pb2.Regime.Name(signal.regime),
        "limits_headroom": {lim.name: round(lim.headroom, 4) for lim in status.limits},
        "account": {
            "equity": round(status.equity, 2),
            "pnl_today": round(status.pnl_today, 2),
            "drawdown": round(status.drawdown, 4),
            "gross_exposure": round(status.gross_exposure, 2),
        },
        "recent_fills": fills,
    }


def apply(
    decision: risk_pb2.RiskDecision,
    outcome: Outcome,
    settings: ModeratorSettings,
    step_size: float,
    min_notional: float,
) -> float | None:
    """Record the outcome on the decision and apply it. Returns the entry's new quantity (None = unchanged;
    0 = the entry is refused) so the caller can amend its pending book."""
    record = decision.moderator
    record.model = settings.model
    record.latency_ms = outcome.latency_ms
    record.prompt_tokens = outcome.prompt_tokens
    record.completion_tokens = outcome.completion_tokens
    verdict = outcome.verdict
    if verdict is None:
        code = FAILURE_CODES.get(outcome.status, "moderator_error")
        record.status = "unavailable"
        record.code = code
        record.reason = outcome.detail
        if settings.fail_policy == "deny":
            _refuse(decision, f"{code}: {outcome.detail} (fail policy deny)")
            return 0.0
        decision.reasons.append(
            f"{code}: {outcome.detail} (fail policy allow: approved with the moderator unavailable)"
        )
        return None
    record.status = "reviewed"
    record.verdict = verdict.verdict
    record.size_factor = verdict.size_factor
    record.reason = verdict.reason
    record.code = f"moderator_{verdict.verdict}"
    if verdict.verdict == "deny":
        _refuse(decision, f"moderator_deny: {verdict.reason}")
        return 0.0
    if verdict.verdict == "allow":
        decision.reasons.append(f"moderator_allow: {verdict.reason}")
        return None
    intent = decision.intent
    qty = policy.floor_to_step(intent.quantity * verdict.size_factor, step_size)
    if qty <= 0 or qty * intent.reference_price < min_notional:
        _refuse(decision, f"moderator_reduce: x{verdict.size_factor:g} leaves {qty:g}, below the venue minimum")
        return 0.0
    decision.reasons.append(
        f"moderator_reduce: x{verdict.size_factor:g} {intent.quantity:g} -> {qty:g}; {verdict.reason}"
    )
    intent.quantity = qty
    return qty


def record_skip(decision: risk_pb2.RiskDecision, reason: str, settings: ModeratorSettings) -> None:
    decision.moderator.status = "skipped"
    decision.moderator.code = reason.split(":", 1)[0]
    decision.moderator.reason = reason
    decision.moderator.model = settings.model
    decision.reasons.append(reason)


def _refuse(decision: risk_pb2.RiskDecision, reason: str) -> None:
    # The moderator's reason goes first: it is the one that decided (reasons.primary_code reads the first).
    kept = [r.replace("approved:", "limits_passed:", 1) if r.startswith("approved:") else r for r in decision.reasons]
    del decision.reasons[:]
    decision.reasons.extend([reason, *kept])
    decision.approved = False
    decision.ClearField("intent")


def fill_summary(report: execution_pb2.ExecutionReport) -> dict[str, Any] | None:
    """One execution report as a recent-fills entry of the context, or None when it carries no fill."""
    if not report.HasField("fill") or report.fill.quantity <= 0:
        return None
    return {
        "symbol": report.order.symbol,
        "side": policy.SIDE_NAMES.get(report.order.side, "?"),
        "price": report.fill.price,
        "quantity": report.fill.quantity,
        "realized_pnl": round(report.realized_pnl_delta, 4),
        "time_ns": report.fill.time_ns or report.time_ns,
    }


def prepare(
    engine: RiskEngine,
    signal: signal_pb2.Signal,
    decision: risk_pb2.RiskDecision,
    fills: list[dict[str, Any]],
    now_ns: int,
) -> dict[str, Any] | None:
    """The context to send for this decision, or None when it is not moderated (not an approved entry, or skipped
    by rule, which is then recorded on the decision). Called with the engine's lock held."""
    settings = engine.settings.moderator
    if not settings.enabled or not is_moderated(decision):
        return None
    skip = skip_reason(signal, settings)
    if skip:
        record_skip(decision, skip, settings)
        return None
    return build_context(signal, decision, engine.status(now_ns, [signal.symbol]), fills)


def settle(engine: RiskEngine, decision: risk_pb2.RiskDecision, outcome: Outcome) -> None:
    """Apply the outcome to the decision and to the engine's pending book and counters (lock held)."""
    intent_id = decision.intent.intent_id
    filt = engine.filter_for(decision.symbol)
    qty = apply(decision, outcome, engine.settings.moderator, filt.step_size, filt.min_notional)
    if qty is None:
        return
    pending = engine.ledger.pending.get(intent_id)
    if qty == 0:
        engine.ledger.pending.pop(intent_id, None)
        engine.counters.approved -= 1
        engine.counters.rejected += 1
    elif pending is not None:
        pending.qty = qty

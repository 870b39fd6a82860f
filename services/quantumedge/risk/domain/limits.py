"""Every risk limit and guard, as pure checks over the ledger, the market view and the live limits.

Three kinds:
- fail-closed gates (no/old market data, no execution state): nothing is approved, exits included;
- state limits (loss today, drawdown, loss streak, exposure, open positions, orders per window):
  a breach refuses entries, and a breach of a limit named in `halt_on` halts trading automatically;
- entry guards (cooldowns, spread, depth): refuse entries only, so reducing risk stays possible.
"""

from __future__ import annotations

from dataclasses import dataclass

from quantumedge.risk.domain.market import MarketView
from quantumedge.risk.domain.state import RiskLedger
from quantumedge.risk.settings import RiskSettings
from quantumedge.v1 import common_pb2, risk_pb2

NS = 1_000_000_000


def _s(ns: float) -> str:
    return f"{ns / NS:.1f}s"


@dataclass(frozen=True)
class Breach:
    """A limit over its threshold: which one and by how much."""

    limit: str
    value: float
    threshold: float
    detail: str

    def describe(self) -> str:
        return f"{self.limit} breached: {self.detail}"


@dataclass(frozen=True)
class Context:
    """Everything a check reads, at one instant."""

    ledger: RiskLedger
    market: MarketView
    limits: risk_pb2.RiskLimits
    settings: RiskSettings
    now_ns: int

    @property
    def ttl(self) -> int:
        return self.settings.pending_intent_ttl_ns


# -- state limits ------------------------------------------------------------------------------------
def state_breaches(ctx: Context) -> list[Breach]:
    """Every state limit at or over its threshold now, in _STATE_LIMITS' order (the first halting one wins)."""
    found = (check(ctx) for check in _STATE_LIMITS)
    return [breach for breach in found if breach is not None]


def _daily_loss(ctx: Context) -> Breach | None:
    lim = ctx.limits
    loss = max(0.0, -ctx.ledger.pnl_today)
    if loss >= lim.daily_loss_limit:
        over = loss - lim.daily_loss_limit
        detail = f"loss today {loss:.2f} >= {lim.daily_loss_limit:.2f} (over by {over:.2f})"
        return Breach("daily_loss_limit", loss, lim.daily_loss_limit, detail)
    return None


def _drawdown(ctx: Context) -> Breach | None:
    led, lim = ctx.ledger, ctx.limits
    dd = led.drawdown
    if dd >= lim.max_drawdown_fraction:
        detail = (
            f"drawdown {dd:.4f} of peak {led.peak_equity:.2f} >= {lim.max_drawdown_fraction:.4f}"
            f" (over by {dd - lim.max_drawdown_fraction:.4f})"
        )
        return Breach("max_drawdown_fraction", dd, lim.max_drawdown_fraction, detail)
    return None


def _loss_streak(ctx: Context) -> Breach | None:
    led, lim = ctx.ledger, ctx.limits
    if lim.max_loss_streak and led.loss_streak >= lim.max_loss_streak:
        detail = f"{led.loss_streak} losing round trips in a row >= {lim.max_loss_streak}"
        return Breach("max_loss_streak", led.loss_streak, lim.max_loss_streak, detail)
    return None


def _order_rate(ctx: Context) -> Breach | None:
    lim = ctx.limits
    if not lim.max_orders_per_window:
        return None
    count = ctx.ledger.orders_in_window(ctx.now_ns, lim.order_window_ns)
    if count >= lim.max_orders_per_window:
        detail = f"{count} orders in the last {_s(lim.order_window_ns)} >= {lim.max_orders_per_window}"
        return Breach("max_orders_per_window", count, lim.max_orders_per_window, detail)
    return None


def _gross_exposure(ctx: Context) -> Breach | None:
    lim = ctx.limits
    gross = ctx.ledger.gross_exposure(ctx.now_ns, ctx.ttl)
    if gross >= lim.max_gross_exposure:
        detail = f"gross exposure {gross:.2f} >= {lim.max_gross_exposure:.2f}"
        return Breach("max_gross_exposure", gross, lim.max_gross_exposure, detail)
    return None


def _open_positions(ctx: Context) -> Breach | None:
    lim = ctx.limits
    open_count = len(ctx.ledger.open_symbols(ctx.now_ns, ctx.ttl))
    # Over, not at: at the limit only new symbols are refused (limit_statuses says the same).
    if open_count > lim.max_open_positions:
        detail = f"{open_count} open positions > {lim.max_open_positions}"
        return Breach("max_open_positions", open_count, lim.max_open_positions, detail)
    return None


# One check per state limit; a new state limit is a function here and a line in this tuple.
_STATE_LIMITS = (_daily_loss, _drawdown, _loss_streak, _order_rate, _gross_exposure, _open_positions)


def halting_breach(ctx: Context) -> Breach | None:
    """The first breach of a limit that halts automatically (settings.halt_on), if any."""
    for breach in state_breaches(ctx):
        if breach.limit in ctx.settings.halt_on:
            return breach
    return None


# -- gates and guards --------------------------------------------------------------------------------
def fail_closed_reasons(ctx: Context, symbol: str) -> list[str]:
    """Why nothing at all may be approved on `symbol` now (empty = the data is trustworthy)."""
    led, lim, now, settings = ctx.ledger, ctx.limits, ctx.now_ns, ctx.settings
    reasons: list[str] = []
    if settings.require_execution_state and led.reports_seen == 0:
        reasons.append("no_execution_state: no execution report seen yet; approving nothing")
    elif settings.max_execution_silence_ns and now - led.last_report_ns > settings.max_execution_silence_ns:
        reasons.append(
            f"stale_execution_state: last execution report {_s(now - led.last_report_ns)} ago"
            f" > {_s(settings.max_execution_silence_ns)}"
        )
    age = ctx.market.data_age_ns(symbol, now)
    if age is None:
        reasons.append(f"stale_market_data: no market data for {symbol}")
    elif age > lim.max_data_age_ns:
        reasons.append(f"stale_market_data: {symbol} data {_s(age)} old > {_s(lim.max_data_age_ns)}")
    return reasons


def entry_guard_reasons(ctx: Context, symbol: str, side: int) -> list[str]:
    """Every limit or guard that refuses a new entry on `symbol` now."""
    led, lim, now = ctx.ledger, ctx.limits, ctx.now_ns
    reasons = [b.describe() for b in state_breaches(ctx) if b.limit != "max_open_positions"]
    open_symbols = led.open_symbols(now, ctx.ttl)
    if symbol not in open_symbols and len(open_symbols) >= lim.max_open_positions:
        reasons.append(f"max_open_positions: {len(open_symbols)} open >= {lim.max_open_positions}")
    last_loss = led.last_loss_ns.get(symbol)
    if lim.cooldown_after_loss_ns and last_loss is not None and now - last_loss < lim.cooldown_after_loss_ns:
        reasons.append(
            f"cooldown_after_loss: {symbol} lost {_s(now - last_loss)} ago < {_s(lim.cooldown_after_loss_ns)}"
        )
    last_exit = led.last_exit_ns.get(symbol)
    if lim.cooldown_after_exit_ns and last_exit is not None and now - last_exit < lim.cooldown_after_exit_ns:
        reasons.append(
            f"cooldown_after_exit: {symbol} exited {_s(now - last_exit)} ago < {_s(lim.cooldown_after_exit_ns)}"
        )
    sym = ctx.market.get(symbol)
    if lim.max_spread_bps:
        if sym.mid <= 0:
            reasons.append(f"max_spread_bps: no top of book for {symbol}")
        elif sym.bid >= sym.ask:
            reasons.append(f"max_spread_bps: {symbol} book crossed or locked (bid {sym.bid:g} >= ask {sym.ask:g})")
        elif sym.spread_bps > lim.max_spread_bps:
            reasons.append(f"max_spread_bps: {symbol} spread {sym.spread_bps:.2f} bps > {lim.max_spread_bps:.2f}")
    if lim.min_depth_notional:
        if sym.depth_ns == 0 or now - sym.depth_ns > lim.max_data_age_ns:
            reasons.append(f"min_depth_notional: no fresh depth for {symbol}")
        else:
            depth = ctx.market.depth_notional(symbol, side, ctx.settings.depth_band_bps)
            if depth < lim.min_depth_notional:
                reasons.append(
                    f"min_depth_notional: {symbol} depth {depth:.2f} within {ctx.settings.depth_band_bps:g} bps"
                    f" < {lim.min_depth_notional:.2f}"
                )
    return reasons


def notional_cap_reasons(ctx: Context, symbol: str, notional: float) -> list[str]:
    """For an order of fixed size (manual review): each notional cap it would exceed."""
    led, lim, now = ctx.ledger, ctx.limits, ctx.now_ns
    reasons: list[str] = []
    if notional > lim.max_order_notional:
        reasons.append(f"max_order_notional: order {notional:.2f} > {lim.max_order_notional:.2f}")
    sym_after = led.symbol_exposure(symbol, now, ctx.ttl) + notional
    if sym_after > lim.max_symbol_notional:
        reasons.append(
            f"max_symbol_notional: {symbol} exposure would be {sym_after:.2f} > {lim.max_symbol_notional:.2f}"
        )
    gross_after = led.gross_exposure(now, ctx.ttl) + notional
    if gross_after > lim.max_gross_exposure:
        reasons.append(f"max_gross_exposure: gross exposure would be {gross_after:.2f} > {lim.max_gross_exposure:.2f}")
    return reasons


# -- status ------------------------------------------------------------------------------------------
def _status(name: str, value: float, threshold: float, lower_bound: bool = False) -> risk_pb2.LimitStatus:
    """LimitStatus for a cap (value must stay below threshold) or a floor (lower_bound: must stay above)."""
    if lower_bound:
        return risk_pb2.LimitStatus(
            name=name, value=value, threshold=threshold, headroom=value - threshold, breached=value < threshold
        )
    return risk_pb2.LimitStatus(
        name=name, value=value, threshold=threshold, headroom=threshold - value, breached=value >= threshold
    )


def limit_statuses(ctx: Context, symbols: list[str]) -> list[risk_pb2.LimitStatus]:
    """Each limit with its current value, threshold, headroom and whether it is breached.

    Per-symbol guards report their worst symbol. Disabled limits (threshold 0) are listed, never breached.
    """
    return [*_ledger_statuses(ctx), *_market_statuses(ctx, symbols), _execution_status(ctx)]


def _ledger_statuses(ctx: Context) -> list[risk_pb2.LimitStatus]:
    """The limits on what the ledger holds: loss, drawdown, exposure, positions, streak, rate, cooldowns."""
    led, lim, now = ctx.ledger, ctx.limits, ctx.now_ns
    exposures = led.exposures(now, ctx.ttl)
    out = [
        _status("daily_loss_limit", max(0.0, -led.pnl_today), lim.daily_loss_limit),
        _status("max_drawdown_fraction", led.drawdown, lim.max_drawdown_fraction),
        _status("max_gross_exposure", sum(exposures.values()), lim.max_gross_exposure),
        _status("max_symbol_notional", max(exposures.values(), default=0.0), lim.max_symbol_notional),
    ]
    open_count = len(led.open_symbols(now, ctx.ttl))
    positions = _status("max_open_positions", open_count, lim.max_open_positions)
    positions.breached = open_count > lim.max_open_positions  # at the limit only new symbols are refused
    out.append(positions)
    optional = [
        ("max_loss_streak", led.loss_streak, lim.max_loss_streak),
        ("max_orders_per_window", led.orders_in_window(now, lim.order_window_ns or 1), lim.max_orders_per_window),
        (
            "cooldown_after_loss_ns",
            max((lim.cooldown_after_loss_ns - (now - t) for t in led.last_loss_ns.values()), default=0),
            lim.cooldown_after_loss_ns,
        ),
        (
            "cooldown_after_exit_ns",
            max((lim.cooldown_after_exit_ns - (now - t) for t in led.last_exit_ns.values()), default=0),
            lim.cooldown_after_exit_ns,
        ),
    ]
    for name, value, threshold in optional:
        status = _status(name, float(value), float(threshold))
        if name.startswith("cooldown"):
            # value = the longest cooldown still running; headroom < 0 while some symbol is cooling down.
            status.value = max(0.0, status.value) if threshold else 0.0
            status.headroom = -status.value if status.value else 0.0
            status.breached = status.value > 0
        elif not threshold:
            status.headroom, status.breached = float("inf"), False  # disabled
        out.append(status)
    return out


def _market_statuses(ctx: Context, symbols: list[str]) -> list[risk_pb2.LimitStatus]:
    """The guards on the market view, each at its worst symbol: data age, spread, depth."""
    lim, now = ctx.limits, ctx.now_ns
    ages = [ctx.market.data_age_ns(s, now) for s in symbols]
    worst_age = (
        float("inf") if not ages or any(a is None for a in ages) else float(max(a for a in ages if a is not None))
    )
    age_status = _status("max_data_age_ns", worst_age, float(lim.max_data_age_ns))
    age_status.breached = worst_age > lim.max_data_age_ns
    spreads = [ctx.market.get(s).spread_bps for s in symbols]
    spread_status = _status("max_spread_bps", max(spreads, default=0.0), lim.max_spread_bps)
    spread_status.breached = bool(lim.max_spread_bps) and spread_status.value > lim.max_spread_bps
    if symbols:
        depth = min(
            min(
                ctx.market.depth_notional(s, side, ctx.settings.depth_band_bps)
                for side in (common_pb2.SIDE_BUY, common_pb2.SIDE_SELL)
            )
            for s in symbols
        )
    else:
        depth = 0.0
    depth_status = _status("min_depth_notional", depth, lim.min_depth_notional, lower_bound=True)
    depth_status.breached = bool(lim.min_depth_notional) and depth < lim.min_depth_notional
    return [age_status, spread_status, depth_status]


def _execution_status(ctx: Context) -> risk_pb2.LimitStatus:
    """Fail-closed gate: risk approves nothing until it has seen execution's state (when required)."""
    seen = 1.0 if ctx.ledger.reports_seen else 0.0
    exec_status = _status("execution_state_seen", seen, 1.0, lower_bound=True)
    exec_status.breached = ctx.settings.require_execution_state and not seen
    return exec_status

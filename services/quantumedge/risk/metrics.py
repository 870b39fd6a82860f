"""Risk's OpenTelemetry instruments: decisions, halts, tick-to-decision latency, and the gauges the service feeds."""

from __future__ import annotations

from quantumedge.shared.observe import Gauges
from quantumedge.shared.telemetry import meter

_meter = meter("risk")
decisions = _meter.create_counter("qe.risk.decisions", description="risk decisions by outcome")
halts = _meter.create_counter("qe.risk.halts", description="halts by cause")
tick_to_decision = _meter.create_histogram(
    "qe.risk.tick_to_decision", unit="ms", description="market event time to the risk decision on its signal"
)
# Trading state as a number for dashboards: 0 ACTIVE, 1 REDUCING (exits only), 2 HALTED.
STATE_VALUE = {"ACTIVE": 0, "REDUCING": 1, "HALTED": 2}
gauges = Gauges("risk")
gauges.gauge("qe.risk.equity", lambda svc: [(svc.snapshot().equity, {})], "equity (quote)", "quote")
gauges.gauge("qe.risk.pnl_today", lambda svc: [(svc.snapshot().pnl_today, {})], "PnL since UTC midnight", "quote")
gauges.gauge("qe.risk.drawdown", lambda svc: [(svc.snapshot().drawdown, {})], "fraction below peak equity")
gauges.gauge(
    "qe.risk.limit_headroom",
    lambda svc: [(lim.headroom, {"limit": lim.name}) for lim in svc.snapshot().limits],
    "room left before each limit (threshold - value; disabled limits report 0)",
)
gauges.gauge(
    "qe.risk.limit_breached",
    lambda svc: [(float(lim.breached), {"limit": lim.name}) for lim in svc.snapshot().limits],
    "1 while a limit is breached",
)
gauges.gauge(
    "qe.risk.trading_state",
    lambda svc: [(STATE_VALUE[svc.trading_state()], {"scope": "account"})],
    "0 ACTIVE, 1 REDUCING, 2 HALTED",
)

"""What is worth telling a person, from the records the system already publishes. Pure: no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from quantumedge.ops import units
from quantumedge.v1 import control_pb2, execution_pb2

DAY_NS = 86_400_000_000_000


@dataclass(frozen=True)
class Notification:
    kind: str
    text: str


def from_control(event: control_pb2.ControlEvent) -> list[Notification]:
    """A halt or resume (state change); an automatic halt is also a limit breach."""
    if event.WhichOneof("payload") != "halt":
        return []
    halt = event.halt
    who = event.actor.subject or "unknown"
    if not halt.halted:
        return [Notification("state", f"QuantumEdge ACTIVE: trading resumed by {who} ({event.reason or 'no reason'})")]
    out = [Notification("halt", f"QuantumEdge HALTED by {who}: {event.reason or halt.limit or 'no reason given'}")]
    if halt.limit and halt.limit != "operator":
        out.append(
            Notification(
                "limit_breach",
                f"Limit breached: {halt.limit} at {halt.value:g} (threshold {halt.threshold:g}); trading halted",
            )
        )
    return out


def from_report(report: execution_pb2.ExecutionReport) -> list[Notification]:
    order = report.order
    side = "BUY" if order.side == 1 else "SELL"
    if report.HasField("fill") and report.fill.quantity > 0:
        fill = report.fill
        role = execution_pb2.OrderRole.Name(order.role).removeprefix("ORDER_ROLE_").lower()
        return [
            Notification(
                "fill",
                f"Fill: {side} {units.quantity(fill.quantity)} {order.symbol} at {units.money(fill.price)}"
                f" ({role}, fee {units.money(report.fee_delta)},"
                f" realised {units.money(report.realized_pnl_delta, signed=True)})",
            )
        ]
    if order.status == execution_pb2.ORDER_STATUS_REJECTED and order.reject_code:
        return [
            Notification(
                "venue_reject",
                f"Order rejected on {report.venue or order.venue}: {side} {units.quantity(order.quantity)}"
                f" {order.symbol}: {order.reject_code} {order.reject_message}".rstrip(),
            )
        ]
    return []


@dataclass
class DailySummary:
    """Folds fills and PnL per UTC day; `roll(now)` returns yesterday's summary once the day has changed."""

    day: int | None = None
    fills: int = 0
    rejects: int = 0
    halts: int = 0
    realized: float = 0.0
    fees: float = 0.0
    symbols: set[str] = field(default_factory=set)

    def add_report(self, report: execution_pb2.ExecutionReport, now_ns: int) -> Notification | None:
        done = self.roll(now_ns)
        if report.HasField("fill") and report.fill.quantity > 0:
            self.fills += 1
            self.symbols.add(report.order.symbol)
        if report.order.status == execution_pb2.ORDER_STATUS_REJECTED and report.order.reject_code:
            self.rejects += 1
        self.realized += report.realized_pnl_delta
        self.fees += report.fee_delta
        return done

    def add_halt(self, now_ns: int) -> Notification | None:
        done = self.roll(now_ns)
        self.halts += 1
        return done

    def roll(self, now_ns: int) -> Notification | None:
        day = now_ns // DAY_NS
        if self.day is None:
            self.day = day
            return None
        if day <= self.day:
            return None
        text = (
            f"Daily summary (UTC day {self.day}): {self.fills} fills"
            f" on {', '.join(sorted(self.symbols)) or 'no symbol'},"
            f" realised {units.money(self.realized, signed=True)}, fees {units.money(self.fees)},"
            f" {self.rejects} venue rejections, {self.halts} halts"
        )
        self.day, self.fills, self.rejects, self.halts, self.realized, self.fees = day, 0, 0, 0, 0.0, 0.0
        self.symbols = set()
        return Notification("daily_summary", text)

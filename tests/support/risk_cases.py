"""Limits driven over their thresholds by execution reports: one case per state limit (shared by the
in-process and the Kafka tests)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from quantumedge.v1 import execution_pb2
from tests.support.risk_builders import NS, report, round_trip


@dataclass
class Case:
    limit: str
    overrides: dict
    drive: Callable[[int], list[execution_pb2.ExecutionReport]]
    value: float
    threshold: float


def two_positions(t: int) -> list[execution_pb2.ExecutionReport]:
    return [
        report("BTCUSDT", t, position_qty=0.01, avg_price=50_000.0, intent_id="a", quantity=0.01),
        report("ETHUSDT", t + 1, position_qty=0.05, avg_price=3_000.0, intent_id="b", quantity=0.05),
    ]


def _win_then_lose(t: int) -> list[execution_pb2.ExecutionReport]:
    # +1000 lifts the peak to 11 000; -700 is 6.4% below it while today's PnL is still +300.
    return round_trip("BTCUSDT", t, pnl=1_000.0) + round_trip("BTCUSDT", t + 10, pnl=-700.0)


def _three_losses(t: int) -> list[execution_pb2.ExecutionReport]:
    return [r for i in range(3) for r in round_trip("ETHUSDT", t + 10 * i, pnl=-1.0, price=3_000.0)]


def _three_orders(t: int) -> list[execution_pb2.ExecutionReport]:
    return [
        report("ETHUSDT", t + i, intent_id=f"order-{i}", status=execution_pb2.ORDER_STATUS_NEW, quantity=0.01)
        for i in range(3)
    ]


HALTING_CASES = [
    Case(
        "daily_loss_limit",
        {"daily_loss_limit": 100.0},
        lambda t: round_trip("ETHUSDT", t, -150.0, 0.05, 3_000.0),
        150.0,
        100.0,
    ),
    Case(
        "max_drawdown_fraction",
        {"max_drawdown_fraction": 0.05, "daily_loss_limit": 5_000.0},
        _win_then_lose,
        700.0 / 11_000.0,
        0.05,
    ),
    Case("max_loss_streak", {"max_loss_streak": 3}, _three_losses, 3, 3),
    Case("max_gross_exposure", {"max_gross_exposure": 600.0}, two_positions, 650.0, 600.0),
    Case("max_open_positions", {"max_open_positions": 1}, two_positions, 2, 1),
    Case("max_orders_per_window", {"max_orders_per_window": 3, "order_window_ns": 60 * NS}, _three_orders, 3, 3),
]

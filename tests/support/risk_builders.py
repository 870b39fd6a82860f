"""Builders for the real protobuf messages risk consumes, and a settable clock (shared by risk tests)."""

from __future__ import annotations

import dataclasses
import itertools
import uuid

from quantumedge.risk.domain.state import RiskLedger
from quantumedge.risk.settings import RiskSettings
from quantumedge.v1 import common_pb2, execution_pb2, market_pb2, signal_pb2

NS = 1_000_000_000
T0 = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z: tests start at a UTC midnight
BUY, SELL = common_pb2.SIDE_BUY, common_pb2.SIDE_SELL
_seq = itertools.count(1)


class FakeClock:
    """The explicit clock risk takes: tests move time, never wait for it."""

    def __init__(self, start_ns: int = T0 + 3600 * NS) -> None:
        self.now = start_ns

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> int:
        self.now += int(seconds * NS)
        return self.now


def book(symbol: str, bid: float, ask: float, t_ns: int) -> market_pb2.MarketEvent:
    return market_pb2.MarketEvent(
        symbol=symbol,
        exchange_time_ns=t_ns,
        receive_time_ns=t_ns,
        sequence=next(_seq),
        source="synthetic",
        top_of_book=market_pb2.TopOfBook(bid_price=bid, bid_quantity=1.0, ask_price=ask, ask_quantity=1.0),
    )


def depth(symbol: str, mid: float, qty_per_level: float, t_ns: int, levels: int = 5) -> market_pb2.MarketEvent:
    tick = mid * 0.0001
    return market_pb2.MarketEvent(
        symbol=symbol,
        exchange_time_ns=t_ns,
        receive_time_ns=t_ns,
        sequence=next(_seq),
        source="synthetic",
        depth=market_pb2.DepthUpdate(
            bids=[common_pb2.PriceLevel(price=mid - (i + 1) * tick, quantity=qty_per_level) for i in range(levels)],
            asks=[common_pb2.PriceLevel(price=mid + (i + 1) * tick, quantity=qty_per_level) for i in range(levels)],
        ),
    )


def signal(
    symbol: str = "BTCUSDT",
    p_up: float = 0.7,
    t_ns: int = T0,
    regime: int = common_pb2.REGIME_LOW_VOL_RANGE,
    signal_id: str | None = None,
    mid: float = 50_000.0,
    expected_return_bps: float | None = None,
    volatility_bps: float = 0.0,
    row_interval_s: float = 0.0,
) -> signal_pb2.Signal:
    """A signal whose every horizon expects `expected_return_bps` net of fees (default: +/-100 bps per
    unit of p_up away from 0.5, so p_up 0.7 is an entry and 0.3 an exit past the 15 bps hysteresis).
    Without volatility_bps / row_interval_s the policy cannot price Kelly and sizes at risk_fraction."""
    er = (p_up - 0.5) * 100.0 if expected_return_bps is None else expected_return_bps
    return signal_pb2.Signal(
        signal_id=signal_id or str(uuid.uuid4()),
        symbol=symbol,
        event_time_ns=t_ns,
        created_time_ns=t_ns,
        predictions=[
            signal_pb2.HorizonPrediction(horizon=h, p_up=p_up, model_version="test", expected_return_bps=er)
            for h in (1, 5, 30)
        ],
        edge=(p_up - 0.5) * 2,
        confidence=p_up,
        regime=regime,
        mid_price=mid,
        spread_bps=1.0,
        volatility_bps=volatility_bps,
        row_interval_s=row_interval_s,
    )


def report(
    symbol: str,
    t_ns: int,
    *,
    position_qty: float | None = None,
    avg_price: float = 50_000.0,
    realized: float = 0.0,
    fee: float = 0.0,
    equity: float = 0.0,
    intent_id: str = "",
    status: int = execution_pb2.ORDER_STATUS_FILLED,
    role: int = execution_pb2.ORDER_ROLE_ENTRY,
    side: int = BUY,
    quantity: float = 0.0,
    note: str = "",
) -> execution_pb2.ExecutionReport:
    """One execution report as execution publishes it; an order part only when intent_id is given."""
    r = execution_pb2.ExecutionReport(
        report_id=str(uuid.uuid4()),
        time_ns=t_ns,
        realized_pnl_delta=realized,
        fee_delta=fee,
        equity=equity,
        venue="paper",
        note=note,
    )
    if intent_id:
        r.order.CopyFrom(
            execution_pb2.Order(
                client_order_id=f"qe-{intent_id[:20]}-{next(_seq)}",
                intent_id=intent_id,
                symbol=symbol,
                side=side,
                role=role,
                status=status,
                quantity=quantity,
                filled_quantity=quantity if status == execution_pb2.ORDER_STATUS_FILLED else 0.0,
            )
        )
    if position_qty is not None:
        r.position.CopyFrom(
            execution_pb2.Position(symbol=symbol, quantity=position_qty, average_price=avg_price, updated_time_ns=t_ns)
        )
    return r


def round_trip(
    symbol: str, t_ns: int, pnl: float, qty: float = 0.01, price: float = 50_000.0
) -> list[execution_pb2.ExecutionReport]:
    """Open then close a long position: two fills whose realised PnL adds up to `pnl`."""
    entry_id, exit_id = str(uuid.uuid4()), str(uuid.uuid4())
    return [
        report(symbol, t_ns, position_qty=qty, avg_price=price, intent_id=entry_id, quantity=qty),
        report(
            symbol,
            t_ns + 1,
            position_qty=0.0,
            avg_price=0.0,
            realized=pnl,
            intent_id=exit_id,
            role=execution_pb2.ORDER_ROLE_EXIT,
            side=SELL,
            quantity=qty,
        ),
    ]


def snapshot(t_ns: int, equity: float = 0.0) -> execution_pb2.ExecutionReport:
    """What execution publishes on start: its state, no order (tells risk execution state is known)."""
    return report("", t_ns, equity=equity, note="startup snapshot")


def quiet_settings(**overrides: object) -> RiskSettings:
    """Settings with cooldowns and optional guards off, so a test exercises only the limit it names."""
    s = RiskSettings()
    limits = s.limits.model_copy(
        update={
            "cooldown_after_loss_ns": 0,
            "cooldown_after_exit_ns": 0,
            "max_loss_streak": 0,
            "max_orders_per_window": 0,
            "min_depth_notional": 0.0,
            "min_confidence": 0.5,
            "min_edge": 0.0,
        }
    )
    limit_overrides = {k: v for k, v in overrides.items() if k in type(s.limits).model_fields}
    other = {"max_execution_silence_ns": 0} | {k: v for k, v in overrides.items() if k not in limit_overrides}
    return s.model_copy(update={"limits": limits.model_copy(update=limit_overrides), **other})


def ledger_state(led: RiskLedger) -> dict:
    """Every field of a risk ledger, comparable with == (the dedup windows as ordered lists)."""
    fields = {k: v for k, v in vars(led).items() if k not in ("min_tradable", "_seen_reports", "_seen_orders")}
    fields["holdings"] = {s: dataclasses.asdict(h) for s, h in led.holdings.items()}
    fields["pending"] = {k: dataclasses.asdict(p) for k, p in led.pending.items()}
    fields["_order_times"] = list(led._order_times)
    fields["seen_reports"] = led._seen_reports.newest(10**6)
    fields["seen_orders"] = led._seen_orders.newest(10**6)
    fields["equity"] = led.equity
    return fields

"""Small builders for execution tests: market events, decisions, an engine on the paper venue."""

from __future__ import annotations

import time
from collections.abc import Iterable

from quantumedge.execution.engine import EngineConfig, ExecutionEngine, ListEmitter
from quantumedge.execution.paper import PaperConfig
from quantumedge.execution.venue import PaperVenue
from quantumedge.v1 import common_pb2, market_pb2, risk_pb2

SYMBOL = "BTCUSDT"


def depth(t_ns: int, bids: Iterable[tuple[float, float]], asks: Iterable[tuple[float, float]], symbol: str = SYMBOL):
    return market_pb2.MarketEvent(
        symbol=symbol,
        exchange_time_ns=t_ns,
        depth=market_pb2.DepthUpdate(
            bids=[common_pb2.PriceLevel(price=p, quantity=q) for p, q in bids],
            asks=[common_pb2.PriceLevel(price=p, quantity=q) for p, q in asks],
        ),
    )


def top(t_ns: int, bid: float, bid_qty: float, ask: float, ask_qty: float, symbol: str = SYMBOL):
    return market_pb2.MarketEvent(
        symbol=symbol,
        exchange_time_ns=t_ns,
        top_of_book=market_pb2.TopOfBook(bid_price=bid, bid_quantity=bid_qty, ask_price=ask, ask_quantity=ask_qty),
    )


def trade(t_ns: int, price: float, qty: float = 10.0, symbol: str = SYMBOL):
    return market_pb2.MarketEvent(
        symbol=symbol, exchange_time_ns=t_ns, trade=market_pb2.Trade(price=price, quantity=qty, trade_id=t_ns)
    )


def decision(
    intent_id: str,
    side: int = common_pb2.SIDE_BUY,
    qty: float = 0.1,
    approved: bool = True,
    kind: int = risk_pb2.INTENT_KIND_ENTRY,
    order_type: int = risk_pb2.ORDER_TYPE_MARKET,
    limit: float = 0.0,
    tif: int = risk_pb2.TIME_IN_FORCE_UNSPECIFIED,
    tp: float = 0.0,
    sl: float = 0.0,
    trailing_bps: float = 0.0,
    time_stop_ns: int = 0,
    symbol: str = SYMBOL,
    reference: float = 100.0,
    decided_ns: int | None = None,
) -> risk_pb2.RiskDecision:
    """A decision as risk publishes it (unsigned: sign it with tests.support.signing for a running service)."""
    return risk_pb2.RiskDecision(
        decision_id=f"d-{intent_id}",
        symbol=symbol,
        approved=approved,
        reasons=["test"],
        decided_time_ns=time.time_ns() if decided_ns is None else decided_ns,
        intent=risk_pb2.OrderIntent(
            intent_id=intent_id,
            symbol=symbol,
            side=side,
            kind=kind,
            order_type=order_type,
            time_in_force=tif,
            quantity=qty,
            limit_price=limit,
            take_profit_price=tp,
            stop_loss_price=sl,
            trailing_stop_bps=trailing_bps,
            time_stop_ns=time_stop_ns,
            reference_price=reference,
        ),
    )


def paper_engine(config: PaperConfig | None = None) -> tuple[ExecutionEngine, PaperVenue, ListEmitter]:
    venue = PaperVenue(config or PaperConfig())
    emitter = ListEmitter()
    engine = ExecutionEngine(venue, emitter, EngineConfig(symbols=(SYMBOL,)), clock=lambda: venue.now_ns() or 1)
    return engine, venue, emitter


# A book deep enough for 0.1 BTC market orders, with liquidity spread over three ask levels.
BOOK_BIDS = [(99.9, 1.0), (99.8, 2.0), (99.7, 5.0)]
BOOK_ASKS = [(100.0, 0.03), (100.1, 0.05), (100.2, 5.0)]

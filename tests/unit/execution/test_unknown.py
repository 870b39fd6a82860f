"""The pure bookkeeping of unknown outcomes and of the exchangeInfo cache (clocks injected)."""

from __future__ import annotations

import itertools
from decimal import Decimal

from quantumedge.execution.domain.filters import SymbolFilters
from quantumedge.execution.domain.orders import Order, OrderStatus, OrderType, Side
from quantumedge.execution.domain.unknown import OUTCOME_UNKNOWN, UnknownOutcomes
from quantumedge.execution.exchange_info import ExchangeInfoCache

S = 1_000_000_000


def unknown_order(since_ns: int, symbol: str = "BTCUSDT") -> Order:
    return Order("qeEx", symbol, Side.BUY, OrderType.MARKET, Decimal("0.1"), outcome_unknown_since_ns=since_ns)


def test_queries_back_off_and_the_bound_raises_one_alert() -> None:
    tracker = UnknownOutcomes(bound_ns=60 * S)
    order = unknown_order(since_ns=1 * S)
    assert tracker.due(order, 1 * S)
    tracker.asked(order, 1 * S)
    assert not tracker.due(order, 1 * S)  # the next question waits
    due_times = []
    now = 1 * S
    for _ in range(6):
        while not tracker.due(order, now):
            now += S // 100
        due_times.append(now)
        tracker.asked(order, now)
    gaps = [b - a for a, b in itertools.pairwise(due_times)]
    # Backs off (0.5 s doubling, equal jitter), capped at 10 s within the bound.
    assert gaps[0] <= 1 * S and gaps[-1] >= 4 * S and max(gaps) <= 10 * S + S // 100
    assert not tracker.expired(order, 60 * S) and tracker.expired(order, 61 * S)
    assert not tracker.needs_alert(order, 30 * S)
    assert tracker.needs_alert(order, 61 * S) and not tracker.needs_alert(order, 62 * S)
    assert tracker.exits_only([order], 61 * S) == {"BTCUSDT": OUTCOME_UNKNOWN}
    tracker.asked(order, 61 * S)  # past the bound: asked less often, still asked
    assert not tracker.due(order, 70 * S) and tracker.due(order, 92 * S)
    order.status = OrderStatus.FILLED  # its fate is known
    assert tracker.exits_only([order], 61 * S) == {}


def test_exchange_info_cache_keeps_filters_and_unknown_symbols_with_expiry() -> None:
    t = [0.0]
    cache = ExchangeInfoCache(ttl_s=100, unknown_ttl_s=10, clock=lambda: t[0])
    assert cache.needs_fetch("BTCUSDT")
    cache.store([SymbolFilters.simple("BTCUSDT")])
    assert not cache.needs_fetch("BTCUSDT") and cache.cached("BTCUSDT").symbol == "BTCUSDT"
    cache.mark_unknown(["DOGEUSDT"])
    assert cache.unknown("DOGEUSDT") and not cache.needs_fetch("DOGEUSDT")
    t[0] = 11.0
    assert not cache.unknown("DOGEUSDT") and cache.needs_fetch("DOGEUSDT")
    t[0] = 101.0
    assert cache.needs_fetch("BTCUSDT") and cache.cached("BTCUSDT") is not None  # stale, still served
    cache.mark_unknown(["BTCUSDT"])  # delisted: its filters go
    assert cache.cached("BTCUSDT") is None

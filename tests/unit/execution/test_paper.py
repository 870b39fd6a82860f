"""The paper fill simulator: book walking, fees, latency, slippage, partial fills, IOC/FOK, resting
limits, stops (trailing too) and OCO legs that cancel each other, all on the market's clock."""

from __future__ import annotations

from decimal import Decimal

import pytest

from quantumedge.execution.domain.orders import OcoRequest, OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from quantumedge.execution.errors import OrderNotFound, VenueRejected
from quantumedge.execution.paper import FillSimulator, PaperConfig
from tests.support.execution_builders import BOOK_ASKS, BOOK_BIDS, depth, top, trade

D = Decimal

SYM = "BTCUSDT"


def sim(**kw: object) -> FillSimulator:
    s = FillSimulator(PaperConfig(**kw))  # type: ignore[arg-type]
    s.on_market(depth(1_000, BOOK_BIDS, BOOK_ASKS))
    return s


def market(cid: str, side: Side, qty: str) -> OrderRequest:
    return OrderRequest(cid, SYM, side, OrderType.MARKET, D(qty))


def limit(cid: str, side: Side, qty: str, price: str, tif: TimeInForce = TimeInForce.GTC) -> OrderRequest:
    return OrderRequest(cid, SYM, side, OrderType.LIMIT, D(qty), price=D(price), time_in_force=tif)


def fills(updates):
    return [u.fill for u in updates if u.fill is not None]


def test_market_order_walks_the_levels_and_pays_the_taker_fee() -> None:
    s = sim()
    out = s.submit(market("a", Side.BUY, "0.1"))
    got = fills(out)
    assert [(f.price, f.quantity) for f in got] == [
        (D("100.0"), D("0.03")),
        (D("100.1"), D("0.05")),
        (D("100.2"), D("0.02")),
    ]
    assert sum(f.quantity for f in got) == D("0.1")
    assert all(f.fee == f.price * f.quantity * D(10) / D(10_000) and not f.is_maker for f in got)
    assert out[0].status is OrderStatus.NEW and out[-1].status is OrderStatus.FILLED


def test_liquidity_taken_stays_taken_until_the_next_book() -> None:
    s = sim()
    s.submit(market("a", Side.BUY, "0.03"))
    second = fills(s.submit(market("b", Side.BUY, "0.03")))
    assert second[0].price == D("100.1")
    s.on_market(depth(2_000, BOOK_BIDS, BOOK_ASKS))
    assert fills(s.submit(market("c", Side.BUY, "0.03")))[0].price == D("100.0")


def test_market_order_that_exhausts_the_book_expires_with_what_it_got() -> None:
    s = FillSimulator()
    s.on_market(depth(1, [(99.0, 1.0)], [(100.0, 0.02)]))
    out = s.submit(market("a", Side.BUY, "0.05"))
    assert sum(f.quantity for f in fills(out)) == D("0.02")
    assert out[-1].status is OrderStatus.EXPIRED


def test_slippage_is_adverse() -> None:
    s = sim(slippage_bps=D(10))
    buy = fills(s.submit(market("a", Side.BUY, "0.01")))[0]
    sell = fills(s.submit(market("b", Side.SELL, "0.01")))[0]
    assert buy.price == D("100.0") * D("1.001") and sell.price == D("99.9") * D("0.999")


def test_latency_in_simulated_time() -> None:
    s = sim(latency_ns=5_000)
    out = s.submit(market("a", Side.BUY, "0.01"))
    assert out == []  # sent, not there yet: the venue has said nothing
    assert s.advance(3_000) == []  # 2 us after submit: still in flight
    later = s.on_market(depth(7_000, [(100.9, 1)], [(101.0, 1)]))
    # It arrived at 6_000, before this book: acknowledged then, and traded on the book it would have met.
    assert [u.status for u in later] == [OrderStatus.NEW, OrderStatus.FILLED]
    assert fills(later)[0].price == D("100.0") and fills(later)[0].time_ns == 6_000


def test_limit_rests_until_the_book_crosses_it_then_fills_as_maker() -> None:
    s = sim()
    out = s.submit(limit("a", Side.BUY, "0.5", "99.5"))
    assert not fills(out) and out[-1].status is OrderStatus.NEW
    assert not fills(s.on_market(top(2_000, 99.6, 1, 99.7, 1)))
    got = fills(s.on_market(top(3_000, 99.3, 1, 99.4, 0.2)))
    assert [(f.price, f.quantity, f.is_maker) for f in got] == [(D("99.5"), D("0.2"), True)]
    assert s.query("a").status is OrderStatus.PARTIALLY_FILLED
    rest = fills(s.on_market(trade(4_000, 99.4, 1.0)))
    assert rest[0].quantity == D("0.3") and s.query("a").status is OrderStatus.FILLED


def test_a_trade_at_the_limit_price_does_not_fill_a_resting_order() -> None:
    s = sim()
    s.submit(limit("a", Side.SELL, "0.1", "101"))
    assert not fills(s.on_market(trade(2_000, 101.0)))
    assert fills(s.on_market(trade(3_000, 101.01)))[0].price == D("101")


def test_crossing_limit_takes_then_rests_the_remainder() -> None:
    s = sim()
    out = s.submit(limit("a", Side.BUY, "0.1", "100.1"))
    assert sum(f.quantity for f in fills(out)) == D("0.08")
    assert s.query("a").status is OrderStatus.PARTIALLY_FILLED


def test_ioc_expires_the_rest_and_fok_fills_all_or_nothing() -> None:
    s = sim()
    out = s.submit(limit("a", Side.BUY, "0.1", "100.1", TimeInForce.IOC))
    assert sum(f.quantity for f in fills(out)) == D("0.08") and out[-1].status is OrderStatus.EXPIRED
    s.on_market(depth(2_000, BOOK_BIDS, BOOK_ASKS))
    out = s.submit(limit("b", Side.BUY, "0.1", "100.1", TimeInForce.FOK))
    assert not fills(out) and out[-1].status is OrderStatus.EXPIRED
    out = s.submit(limit("c", Side.BUY, "0.08", "100.1", TimeInForce.FOK))
    assert sum(f.quantity for f in fills(out)) == D("0.08") and out[-1].status is OrderStatus.FILLED


def test_post_only_that_would_take_is_rejected() -> None:
    s = sim()
    req = OrderRequest("a", SYM, Side.BUY, OrderType.LIMIT, D("0.1"), price=D("100.0"), post_only=True)
    with pytest.raises(VenueRejected, match="immediately match"):
        s.submit(req)


def test_duplicate_open_client_order_id_is_rejected() -> None:
    s = sim()
    s.submit(limit("a", Side.BUY, "0.1", "90"))
    with pytest.raises(VenueRejected, match="Duplicate order sent"):
        s.submit(limit("a", Side.BUY, "0.1", "90"))


def oco(tp: str = "101", sl: str = "99", trailing: str = "0") -> OcoRequest:
    return OcoRequest("L", SYM, Side.SELL, D("0.1"), "tp", D(tp), "sl", D(sl), D(trailing))


def test_oco_take_profit_fill_expires_the_stop() -> None:
    s = sim()
    s.on_market(trade(1_500, 100.0))
    out = s.submit_oco(oco())
    assert {u.client_order_id for u in out} == {"tp", "sl"}
    out = s.on_market(trade(2_000, 101.5))
    assert s.query("sl").status is OrderStatus.EXPIRED
    assert s.query("tp").status is OrderStatus.FILLED
    assert out[0].client_order_id == "sl"  # the other leg goes first, as on Binance


def test_oco_stop_trigger_expires_the_take_profit_and_sells_at_market() -> None:
    s = sim()
    s.on_market(trade(1_500, 100.0))
    s.submit_oco(oco())
    out = s.on_market(trade(2_000, 98.9))
    assert s.query("tp").status is OrderStatus.EXPIRED
    sold = fills(out)
    assert sum(f.quantity for f in sold) == D("0.1") and sold[0].price == D("99.9") and not sold[0].is_maker


def test_cancelling_one_oco_leg_cancels_both() -> None:
    s = sim()
    s.on_market(trade(1_500, 100.0))
    s.submit_oco(oco())
    out = s.cancel("sl")
    assert {(u.client_order_id, u.status) for u in out} == {("sl", OrderStatus.CANCELED), ("tp", OrderStatus.CANCELED)}
    with pytest.raises(OrderNotFound):
        s.cancel("tp")


def test_oco_prices_must_straddle_the_market() -> None:
    s = sim()
    s.on_market(trade(1_500, 100.0))
    with pytest.raises(VenueRejected, match="relationship of the prices"):
        s.submit_oco(oco(tp="99.5", sl="99"))


def test_trailing_stop_follows_the_high() -> None:
    s = sim()
    s.on_market(trade(1_500, 100.0))
    s.submit(OrderRequest("ts", SYM, Side.SELL, OrderType.MARKET, D("0.1"), trailing_stop_bps=D(100)))
    s.on_market(trade(2_000, 110.0))  # stop trails up to 108.9
    assert s.query("ts").status is OrderStatus.NEW
    s.on_market(depth(2_500, [(108.5, 1.0)], [(108.7, 1.0)]))
    out = s.on_market(trade(3_000, 108.8))
    assert s.query("ts").status is OrderStatus.FILLED and fills(out)[0].price == D("108.5")


def test_restore_re_inserts_a_resting_order() -> None:
    s = sim()
    s.restore(limit("a", Side.BUY, "0.5", "99.5"), filled=D("0.2"), filled_quote=D("19.9"))
    got = fills(s.on_market(trade(2_000, 99.0, 1.0)))
    assert got[0].quantity == D("0.3") and s.query("a").status is OrderStatus.FILLED

"""Order state machine, fills that add up, and positions with average price, PnL and fees."""

from __future__ import annotations

from decimal import Decimal

import pytest

from quantumedge.execution.domain.orders import (
    Fill,
    IllegalTransition,
    Order,
    OrderError,
    OrderStatus,
    OrderType,
    OverfillError,
    Side,
    value_fee,
)
from quantumedge.execution.domain.positions import Position

D = Decimal


def order(qty: str = "1.0") -> Order:
    return Order("qeEx", "BTCUSDT", Side.BUY, OrderType.MARKET, D(qty))


def fill(trade_id: str, qty: str, price: str = "100", fee: str = "0") -> Fill:
    return Fill("qeEx", trade_id, D(price), D(qty), fee=D(fee), fee_asset="USDT", fee_quote=D(fee))


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ([OrderStatus.NEW, OrderStatus.CANCELED], True),
        ([OrderStatus.NEW, OrderStatus.EXPIRED], True),
        ([OrderStatus.REJECTED], True),
        ([OrderStatus.NEW, OrderStatus.REJECTED], False),
        ([OrderStatus.CANCELED, OrderStatus.NEW], False),
        ([OrderStatus.EXPIRED, OrderStatus.CANCELED], False),
        ([OrderStatus.NEW, OrderStatus.PENDING], False),
    ],
)
def test_only_legal_transitions(path: list[OrderStatus], ok: bool) -> None:
    o = order()
    if ok:
        for status in path:
            assert o.transition(status)
        assert o.status is path[-1]
    else:
        with pytest.raises(IllegalTransition):
            for status in path:
                o.transition(status)


def test_same_status_is_not_a_transition() -> None:
    o = order()
    o.transition(OrderStatus.NEW)
    assert o.transition(OrderStatus.NEW) is False


def test_filled_needs_the_fills() -> None:
    o = order()
    with pytest.raises(OrderError):
        o.transition(OrderStatus.FILLED)


def test_partial_fills_add_up_exactly() -> None:
    o = order("0.3")
    for i, q in enumerate(["0.1", "0.1", "0.1"]):
        o.apply_fill(fill(str(i), q, price=str(100 + i)))
    assert o.status is OrderStatus.FILLED
    assert o.filled_quantity == D("0.3")  # 0.1 + 0.1 + 0.1 in floats would not be
    assert o.average_price == D("101")


def test_status_follows_fills() -> None:
    o = order("1")
    o.transition(OrderStatus.NEW)
    o.apply_fill(fill("a", "0.4"))
    assert o.status is OrderStatus.PARTIALLY_FILLED
    o.apply_fill(fill("b", "0.6"))
    assert o.status is OrderStatus.FILLED


def test_a_redelivered_fill_counts_once() -> None:
    o = order("1")
    assert o.apply_fill(fill("a", "0.4"))
    assert not o.apply_fill(fill("a", "0.4"))
    assert o.filled_quantity == D("0.4")


def test_overfill_is_refused() -> None:
    o = order("1")
    o.apply_fill(fill("a", "0.7"))
    with pytest.raises(OverfillError):
        o.apply_fill(fill("b", "0.4"))
    assert o.filled_quantity == D("0.7")


def test_late_fill_after_cancel_counts_and_status_stays() -> None:
    o = order("1")
    o.transition(OrderStatus.NEW)
    o.transition(OrderStatus.CANCELED)
    assert o.apply_fill(fill("a", "0.2"))
    assert o.status is OrderStatus.CANCELED and o.filled_quantity == D("0.2")


def test_rejected_takes_no_fill() -> None:
    o = order()
    o.reject("-2010", "Account has insufficient balance for requested action.")
    with pytest.raises(IllegalTransition):
        o.apply_fill(fill("a", "0.1"))
    assert o.reject_code == "-2010"


def test_position_average_realised_and_unrealised() -> None:
    p = Position("BTCUSDT")
    p.apply_fill(Side.BUY, fill("1", "1", "100", fee="0.1"))
    p.apply_fill(Side.BUY, fill("2", "1", "110", fee="0.11"))
    assert p.quantity == D("2") and p.average_price == D("105")
    delta = p.apply_fill(Side.SELL, fill("3", "0.5", "120", fee="0.06"))
    assert delta == D("7.5") - D("0.06")
    assert p.quantity == D("1.5") and p.average_price == D("105")
    p.mark(D("100"))
    assert p.unrealized_pnl == D("-7.5")
    assert p.fees == D("0.27")
    assert p.realized_pnl == D("7.5") - D("0.27")


def test_position_crossing_zero_opens_the_rest_at_the_fill_price() -> None:
    p = Position("BTCUSDT")
    p.apply_fill(Side.BUY, fill("1", "1", "100"))
    delta = p.apply_fill(Side.SELL, fill("2", "3", "90"))
    assert delta == D("-10")
    assert p.quantity == D("-2") and p.average_price == D("90")
    p.apply_fill(Side.BUY, fill("3", "2", "80"))
    assert p.flat and p.average_price == 0 and p.realized_pnl == D("-10") + D("20")


def test_a_position_reopened_from_flat_is_not_marked_at_its_previous_life() -> None:
    p = Position("BTCUSDT")
    p.apply_fill(Side.BUY, fill("1", "1", "100"))
    p.mark(D("101"))
    p.apply_fill(Side.SELL, fill("2", "1", "101"))
    assert p.flat
    # The market moved to 120 while flat (flat positions are not marked); the new entry is at 120.
    p.apply_fill(Side.BUY, fill("3", "1", "120"))
    assert p.mark_price == D("120") and p.unrealized_pnl == 0


def test_commission_in_the_base_asset_shrinks_the_holding() -> None:
    fee_quote, base_fee = value_fee(D("0.001"), "BTC", D("100"), "BTC", "USDT")
    assert (fee_quote, base_fee) == (D("0.1"), D("0.001"))
    p = Position("BTCUSDT")
    p.apply_fill(Side.BUY, Fill("x", "1", D("100"), D("1"), D("0.001"), "BTC", fee_quote, base_fee))
    assert p.quantity == D("0.999") and p.average_price == D("100")
    # Cash view: paid 100, sell 0.999 at 110 -> 109.89; PnL 9.89 = realised (gross 9.99 - fee 0.1).
    p.apply_fill(Side.SELL, Fill("x", "2", D("110"), D("0.999")))
    assert p.flat and p.realized_pnl == D("9.89")


def test_fee_in_a_third_asset_is_not_valued() -> None:
    assert value_fee(D("0.01"), "BNB", D("100"), "BTC", "USDT") == (0, 0)

"""Each venue says itself what a restart left of an order (Venue.recover), which open orders may be adopted
and whether protection can be placed at once: the engine asks, it never checks which venue it has."""

from __future__ import annotations

from decimal import Decimal

import pytest

from quantumedge.execution.domain.orders import Order, OrderStatus, OrderType, Side, TimeInForce
from quantumedge.execution.venue import BinanceVenue, PaperVenue
from quantumedge.execution.venue_base import Recovery, Venue


def _resting(cid: str, status: OrderStatus) -> Order:
    order = Order(
        cid, "BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal("0.5"), price=Decimal("99.5"), time_in_force=TimeInForce.GTC
    )
    order.status = status
    return order


def test_paper_venue_puts_back_an_accepted_order_and_refuses_one_never_sent() -> None:
    venue = PaperVenue()
    assert venue.recover(_resting("qe-a", OrderStatus.NEW)) is Recovery.RESTORED
    snapshot = venue.query("BTCUSDT", "qe-a")
    assert snapshot is not None and snapshot.status is OrderStatus.NEW and snapshot.price == Decimal("99.5")
    # A PENDING order never reached the simulator (it answers every send at once): nothing is put back.
    assert venue.recover(_resting("qe-b", OrderStatus.PENDING)) is Recovery.NEVER_SENT
    assert venue.query("BTCUSDT", "qe-b") is None


def test_paper_venue_adopts_nothing_and_protects_on_the_first_market_event() -> None:
    venue = PaperVenue()
    venue.recover(_resting("qe-a", OrderStatus.NEW))
    assert [s.client_order_id for s in venue.open_orders()] == ["qe-a"]
    assert venue.adoptable_orders() == []
    assert venue.protects_on_reconcile() is False


def test_paper_venue_has_no_exchange_key_to_rotate() -> None:
    venue = PaperVenue()
    assert venue.follows_key_rotation is False
    with pytest.raises(NotImplementedError):
        venue.update_credentials({"api_key": "k", "api_secret": "s"})


def test_binance_venue_is_asked_and_follows_key_rotation() -> None:
    # Binance keeps its own state: the defaults of Venue (query it, adopt what it lists, protect at once).
    assert BinanceVenue.follows_key_rotation is True
    assert BinanceVenue.recover is Venue.recover and BinanceVenue.adoptable_orders is Venue.adoptable_orders
    assert BinanceVenue.protects_on_reconcile is Venue.protects_on_reconcile
    assert Venue.recover(PaperVenue.__new__(PaperVenue), _resting("qe-c", OrderStatus.NEW)) is Recovery.QUERY

"""Venue hygiene against the local Binance peer, each behaviour as Binance's docs describe it:
cancel replies read by origClientOrderId (single orders and order lists), the order rate (-1015,
X-MBX-ORDER-COUNT-*) kept apart from request weight so cancels always go, the exchangeInfo cache
(unknown symbols included), and the filters a protective OCO must pass (PERCENT_PRICE_BY_SIDE,
TRAILING_DELTA, PRICE_FILTER on stopPrice, MAX_NUM_ALGO_ORDERS, MAX_NUM_ORDER_LISTS)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from quantumedge.execution.domain import ids
from quantumedge.execution.domain.orders import OcoRequest, OrderRequest, OrderStatus, OrderType, Side
from quantumedge.execution.errors import VenueRejected
from quantumedge.v1 import risk_pb2
from tests.integration.execution.rig import SYMBOL, engine_on_peer, make_venue, standard_book
from tests.peers.binance_trading import BinanceTradingPeer
from tests.support.execution_builders import decision

D = Decimal


@pytest.fixture
def peer() -> Iterator[BinanceTradingPeer]:
    with BinanceTradingPeer(symbols=(SYMBOL,)) as p:
        standard_book(p)
        yield p


def resting(intent_id: str, price: float = 90.0, qty: float = 0.1):
    return decision(intent_id, qty=qty, order_type=risk_pb2.ORDER_TYPE_LIMIT, limit=price)


def requests_to(peer: BinanceTradingPeer, method: str, path: str) -> int:
    return sum(1 for r in peer.requests if r[:2] == (method, path))


# -- cancel replies -------------------------------------------------------------------------------
def test_a_cancel_reply_is_credited_to_orig_client_order_id(peer: BinanceTradingPeer) -> None:
    # No user data stream: the cancel's own reply is all the engine hears.
    with engine_on_peer(peer, user_stream=False) as engine:
        order = engine.on_decision(resting("i-rest"))
        assert order.status is OrderStatus.NEW
        queries = requests_to(peer, "GET", "/api/v3/order")
        assert engine.cancel_all(SYMBOL, reason="test") == 1
        assert order.status is OrderStatus.CANCELED and engine.counters["unknown_updates"] == 0
        assert requests_to(peer, "GET", "/api/v3/order") == queries  # the reply alone said so
        assert peer.open_orders() == []


def test_the_reply_names_the_cancel_and_the_order_apart(peer: BinanceTradingPeer) -> None:
    venue = make_venue(peer, user_stream=False)
    venue.start(lambda u: None, lambda: None)
    try:
        venue.submit(OrderRequest("qeErest", SYMBOL, Side.BUY, OrderType.LIMIT, D("0.1"), price=D("90")))
        body = venue.rest.request(
            "DELETE",
            "/api/v3/order",
            {"symbol": SYMBOL, "origClientOrderId": "qeErest", "newClientOrderId": "c1"},
            signed=True,
        ).body
        assert (body["origClientOrderId"], body["clientOrderId"], body["status"]) == ("qeErest", "c1", "CANCELED")
        assert [u.client_order_id for u in venue.parse.cancelled(body)] == ["qeErest"]
    finally:
        venue.stop()


def test_cancelling_one_oco_leg_is_answered_with_the_list_and_both_legs_close(peer: BinanceTradingPeer) -> None:
    with engine_on_peer(peer, user_stream=False) as engine:
        entry = engine.on_decision(decision("i-oco", qty=0.1, tp=101.0, sl=99.0))
        tp_id, sl_id, _ = ids.protective_ids(entry.client_order_id)
        tp, sl = engine.orders[tp_id], engine.orders[sl_id]
        assert tp.status is OrderStatus.NEW and sl.status is OrderStatus.NEW
        queries = requests_to(peer, "GET", "/api/v3/order")
        engine.cancel_all(SYMBOL, reason="test")
        # One DELETE of one leg; the list's answer closed both, no query needed.
        assert requests_to(peer, "DELETE", "/api/v3/order") == 1
        assert requests_to(peer, "GET", "/api/v3/order") == queries
        assert tp.status is OrderStatus.CANCELED and sl.status is OrderStatus.CANCELED
        assert engine.counters["unknown_updates"] == 0 and peer.open_orders() == []


def test_an_order_list_cancel_reports_each_leg_by_its_own_orig_client_order_id(peer: BinanceTradingPeer) -> None:
    venue = make_venue(peer, user_stream=False)
    venue.start(lambda u: None, lambda: None)
    try:
        peer.free["BTC"] = D("1")
        venue.submit_oco(OcoRequest("qeLlist", SYMBOL, Side.SELL, D("0.1"), "qeLtp", D("105"), "qeLsl", D("95")))
        body = venue.rest.request(
            "DELETE", "/api/v3/orderList", {"symbol": SYMBOL, "listClientOrderId": "qeLlist"}, signed=True
        ).body
        reports = body["orderReports"]
        assert sorted(r["origClientOrderId"] for r in reports) == ["qeLsl", "qeLtp"]
        assert all(r["clientOrderId"] not in ("qeLsl", "qeLtp") for r in reports)
        updates = venue.parse.cancelled(body)
        assert sorted((u.client_order_id, u.status.name) for u in updates) == [
            ("qeLsl", "CANCELED"),
            ("qeLtp", "CANCELED"),
        ]
    finally:
        venue.stop()


# -- order rate vs request weight -----------------------------------------------------------------
def test_minus_1015_refuses_new_orders_but_never_blocks_a_cancel(peer: BinanceTradingPeer) -> None:
    # A 1 s Retry-After is longer than this venue may wait: any request it held back would fail.
    with engine_on_peer(peer, user_stream=False, max_wait_s=0.1) as engine:
        working = engine.on_decision(resting("i-working"))
        peer.order_rate_limit_next(1)
        refused = engine.on_decision(resting("i-refused", price=91.0))
        assert refused.status is OrderStatus.REJECTED and refused.reject_code == "-1015"
        limiter = engine.venue.rest.limiter
        assert limiter.before_order() > 0 and limiter.before(1) == 0
        assert engine.cancel_all(SYMBOL, reason="risk off") == 1
        assert working.status is OrderStatus.CANCELED and peer.open_orders() == []
        assert peer.statuses[418] == 0


def test_order_count_headers_hold_back_the_order_over_the_limit_not_the_cancels() -> None:
    with BinanceTradingPeer(symbols=(SYMBOL,), order_limits={"10S": 100, "1D": 10}) as peer:
        standard_book(peer)
        with engine_on_peer(peer, user_stream=False, max_wait_s=0.1) as engine:
            placed = [engine.on_decision(resting(f"i-{n}", price=80.0 + n)) for n in range(9)]
            assert all(o.status is OrderStatus.NEW for o in placed)
            assert engine.venue.rest.limiter.order_counts["1D"][0] == 9
            held = engine.on_decision(resting("i-held", price=89.5))
            # Held back by the client (9 of 10 with headroom): never sent, so the venue never refused it.
            assert held.status is OrderStatus.REJECTED and held.reject_code == "-1015"
            assert held.client_order_id not in peer.order_requests and peer.statuses[429] == 0
            assert engine.cancel_all(SYMBOL, reason="cancels still go") == 9
            assert peer.open_orders() == []


# -- exchangeInfo cache ---------------------------------------------------------------------------
def test_exchange_info_is_cached_including_unknown_symbols(peer: BinanceTradingPeer) -> None:
    with engine_on_peer(peer, user_stream=False, unknown_symbol_ttl_s=0.3) as engine:
        info_calls = requests_to(peer, "GET", "/api/v3/exchangeInfo")
        for n in range(3):
            engine.on_decision(decision(f"i-known-{n}", qty=0.1))
        assert requests_to(peer, "GET", "/api/v3/exchangeInfo") == info_calls
        refused = [engine.on_decision(decision(f"i-doge-{n}", qty=1.0, symbol="DOGEUSDT")) for n in range(5)]
        assert {(o.status, o.reject_code) for o in refused} == {(OrderStatus.REJECTED, "-1121")}
        assert requests_to(peer, "GET", "/api/v3/exchangeInfo") == info_calls + 1
        # The unknown answer expires: the venue is asked again once.
        import time

        time.sleep(0.35)
        engine.on_decision(decision("i-doge-late", qty=1.0, symbol="DOGEUSDT"))
        assert requests_to(peer, "GET", "/api/v3/exchangeInfo") == info_calls + 2


# -- filters a protective OCO must pass -------------------------------------------------------------
def test_protection_is_fitted_inside_percent_price_and_trailing_delta(peer: BinanceTradingPeer) -> None:
    spec = peer.specs[SYMBOL]
    spec.percent_price_by_side = ("1.05", "0.95", "1.05", "0.95", 0)  # avgPriceMins 0: the last price
    spec.trailing_delta = (10, 500, 10, 500)
    with engine_on_peer(peer) as engine:
        # Asked: a take-profit 30% up (outside the 5% band) and a 20% trailing stop (over 500 BIPS).
        entry = engine.on_decision(decision("i-fit", qty=0.1, tp=130.0, trailing_bps=2000.0))
        tp_id, sl_id, _ = ids.protective_ids(entry.client_order_id)
        tp, sl = engine.orders[tp_id], engine.orders[sl_id]
        assert tp.status is OrderStatus.NEW and sl.status is OrderStatus.NEW, (tp.reject_message, sl.reject_message)
        on_venue = {o.client_order_id: o for o in peer.open_orders()}
        average = engine.venue.average_price(SYMBOL)
        assert on_venue[tp_id].price <= average * D("1.05") and on_venue[tp_id].price > average
        assert on_venue[sl_id].trailing_delta == 500
        assert engine.positions[SYMBOL].quantity > 0


def test_the_peer_refuses_what_the_filters_forbid(peer: BinanceTradingPeer) -> None:
    spec = peer.specs[SYMBOL]
    spec.percent_price_by_side = ("1.05", "0.95", "1.05", "0.95", 0)
    spec.trailing_delta = (10, 500, 10, 500)
    peer.free["BTC"] = D("1")
    venue = make_venue(peer, user_stream=False)
    venue.start(lambda u: None, lambda: None)
    try:
        f = venue.filters(SYMBOL)
        assert f.percent_price_by_side is not None and f.trailing_delta is not None
        cases = {
            "PERCENT_PRICE_BY_SIDE": OcoRequest(
                "qeL1", SYMBOL, Side.SELL, D("0.1"), "qeL1tp", D("130"), "qeL1sl", D("95")
            ),
            "TRAILING_DELTA": OcoRequest(
                "qeL2", SYMBOL, Side.SELL, D("0.1"), "qeL2tp", D("101"), "qeL2sl", D(0), trailing_stop_bps=D(2000)
            ),
            "PRICE_FILTER": OcoRequest("qeL3", SYMBOL, Side.SELL, D("0.1"), "qeL3tp", D("101"), "qeL3sl", D("95.005")),
        }
        for name, request in cases.items():
            with pytest.raises(VenueRejected) as err:
                venue.submit_oco(request)
            assert (err.value.code, err.value.message) == ("-1013", f"Filter failure: {name}")
        assert peer.open_orders() == [] and not peer.lists  # refused as a whole: no leg ever existed
    finally:
        venue.stop()


def test_an_entry_whose_protection_would_be_refused_is_not_opened(peer: BinanceTradingPeer) -> None:
    peer.specs[SYMBOL].max_num_order_lists = 1
    with engine_on_peer(peer) as engine:
        first = engine.on_decision(decision("i-first", qty=0.1, tp=105.0, sl=95.0))
        assert first.status is OrderStatus.FILLED and len(peer.lists) == 1
        second = engine.on_decision(decision("i-second", qty=0.1, tp=105.0, sl=95.0))
        assert second.status is OrderStatus.REJECTED
        assert (second.reject_code, second.reject_message) == ("-1013", "Filter failure: MAX_NUM_ORDER_LISTS")
        assert second.client_order_id not in peer.order_requests

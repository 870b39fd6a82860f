"""The Binance venue and the engine against a local peer that speaks Binance's REST and WebSocket API:
signatures, recvWindow, idempotent retries, rate limits, partial fills, OCO, user data stream drops."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest

from quantumedge.execution.domain import ids
from quantumedge.execution.domain.orders import OrderRequest, OrderStatus, OrderType, Side
from quantumedge.execution.engine import ListEmitter
from quantumedge.execution.errors import VenueRejected
from quantumedge.v1 import risk_pb2
from tests.integration.execution.rig import SYMBOL, engine_on_peer, make_venue, standard_book, wait_until
from tests.peers.binance_trading import BinanceTradingPeer
from tests.support.execution_builders import decision

D = Decimal


@pytest.fixture
def peer() -> Iterator[BinanceTradingPeer]:
    with BinanceTradingPeer(symbols=(SYMBOL,)) as p:
        standard_book(p)
        yield p


def venue_position(peer: BinanceTradingPeer) -> D:
    return peer.balance("BTC")


def test_hmac_signed_requests_and_exchange_filters(peer: BinanceTradingPeer) -> None:
    venue = make_venue(peer, user_stream=False)
    venue.start(lambda u: None, lambda: None)
    try:
        f = venue.filters(SYMBOL)
        assert (f.tick_size, f.step_size, f.min_notional) == (D("0.01"), D("0.00001"), D("5"))
        assert venue.rest.limiter.weight_limit_1m == 6000
        assert venue.base_balances([SYMBOL]) == {SYMBOL: D(0)}
        assert peer.statuses[200] >= 3 and not peer.statuses[400]
    finally:
        venue.stop()


def test_wrong_secret_is_refused_with_the_signature_error(peer: BinanceTradingPeer) -> None:
    venue = make_venue(peer, user_stream=False, credentials={"api_key": peer.api_key, "api_secret": "wrong"})
    venue.start(lambda u: None, lambda: None)
    try:
        with pytest.raises(VenueRejected) as err:
            venue.base_balances([SYMBOL])
        assert err.value.code == "-1022" and "Signature" in err.value.message
    finally:
        venue.stop()


def test_ed25519_keys_sign_too() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with BinanceTradingPeer(symbols=(SYMBOL,), api_secret=None, ed25519_public_pem=public) as peer:
        standard_book(peer)
        updates = []
        venue = make_venue(peer, credentials={"api_key": peer.api_key, "private_key": pem.decode()})
        venue.start(updates.append, lambda: None)
        try:
            out = venue.submit(OrderRequest("qeEed", SYMBOL, Side.BUY, OrderType.MARKET, D("0.1")))
            assert out[-1].status is OrderStatus.FILLED
            wait_until(
                lambda: any(u.status is OrderStatus.FILLED for u in updates), what="stream event (Ed25519 subscribe)"
            )
        finally:
            venue.stop()


def test_clock_drift_is_measured_and_a_stale_timestamp_resynced() -> None:
    with BinanceTradingPeer(symbols=(SYMBOL,), server_time_offset_ms=30_000) as peer:
        venue = make_venue(peer, user_stream=False)
        venue.start(lambda u: None, lambda: None)
        try:
            assert abs(venue.rest.offset_ms - 30_000) < 1000
            peer.server_time_offset_ms = -20_000  # the server clock jumps: the next request gets -1021
            assert venue.base_balances([SYMBOL]) == {SYMBOL: D(0)}
            assert peer.statuses[400] == 1 and abs(venue.rest.offset_ms + 20_000) < 1000
        finally:
            venue.stop()


def test_a_timeout_after_the_venue_accepted_makes_one_order(peer: BinanceTradingPeer) -> None:
    with engine_on_peer(peer) as engine:
        peer.hang_next_orders(1, hold_s=5)
        order = engine.on_decision(decision("i-timeout", qty=0.05))
        cid = order.client_order_id
        assert peer.order_requests[cid] == 1 and peer.accepted[cid] == 1
        assert order.status is OrderStatus.FILLED and order.filled_quantity == D("0.05")
        assert engine.positions[SYMBOL].quantity == venue_position(peer) == D("0.05") - D("0.00005")


def test_a_redelivered_intent_makes_one_order_on_the_exchange(peer: BinanceTradingPeer) -> None:
    with engine_on_peer(peer) as engine:
        first = engine.on_decision(decision("i-dup", qty=0.05))
        engine.on_decision(decision("i-dup", qty=0.05))
        assert peer.order_requests == {first.client_order_id: 1}


def test_a_duplicate_client_order_id_at_the_venue_is_adopted_not_doubled(peer: BinanceTradingPeer) -> None:
    venue = make_venue(peer, user_stream=False)
    venue.start(lambda u: None, lambda: None)
    try:
        request = OrderRequest("qeEdup", SYMBOL, Side.BUY, OrderType.LIMIT, D("0.1"), price=D("90"))
        venue.submit(request)
        again = venue.submit(request)
        assert again[-1].status is OrderStatus.NEW and "duplicate" in again[-1].note
        assert peer.accepted == {"qeEdup": 1} and len(peer.open_orders()) == 1
    finally:
        venue.stop()


def test_rate_limit_retry_after_is_respected_without_a_ban(peer: BinanceTradingPeer) -> None:
    with engine_on_peer(peer) as engine:
        peer.rate_limit_next(1, retry_after_s=1)
        order = engine.on_decision(decision("i-429", qty=0.05))
        assert order.status is OrderStatus.FILLED
        assert peer.statuses[429] == 1 and peer.statuses[418] == 0
        assert engine.venue.rest.limiter.last_retry_after_s == 1


def test_rejected_orders_carry_the_exchange_code_and_message(peer: BinanceTradingPeer) -> None:
    with engine_on_peer(peer) as engine:
        order = engine.on_decision(decision("i-sell", side=2, qty=0.1))  # no BTC to sell on a spot account
        assert order.status is OrderStatus.REJECTED
        assert (order.reject_code, order.reject_message) == (
            "-2010",
            "Account has insufficient balance for requested action.",
        )


def test_partial_fills_add_up_to_the_venue_position(peer: BinanceTradingPeer) -> None:
    peer.split_fills(3)
    emitter = ListEmitter()
    with engine_on_peer(peer, emitter) as engine:
        order = engine.on_decision(decision("i-split", qty=0.1))
        fills = [
            r.fill for r in emitter.reports if r.HasField("fill") and r.order.client_order_id == order.client_order_id
        ]
        assert len(fills) == 9  # three levels, each reported as three trades
        assert sum(D(repr(f.quantity)) for f in fills) == order.filled_quantity == D("0.1")
        wait_until(lambda: engine.counters["unknown_updates"] == 0 and len(peer.trades) == 9)
        assert engine.positions[SYMBOL].quantity == venue_position(peer) == D("0.1") - order.base_fees


def test_oco_legs_cancel_each_other_on_the_venue(peer: BinanceTradingPeer) -> None:
    with engine_on_peer(peer) as engine:
        entry = engine.on_decision(decision("i-oco", qty=0.1, tp=101.0, sl=99.0))
        tp_id, sl_id, _ = ids.protective_ids(entry.client_order_id)
        tp, sl = engine.orders[tp_id], engine.orders[sl_id]
        assert tp.status is OrderStatus.NEW and sl.status is OrderStatus.NEW
        assert tp.quantity == D("0.0999")  # what the account holds after the commission in BTC
        assert len(peer.open_orders()) == 2 and len(peer.lists) == 1
        peer.trade(SYMBOL, "101.50")
        wait_until(lambda: tp.status is OrderStatus.FILLED and sl.status is OrderStatus.EXPIRED, what="OCO via stream")
        assert engine.positions[SYMBOL].flat and venue_position(peer) == 0 and peer.open_orders() == []


def test_fills_missed_while_the_user_stream_was_down_are_recovered(peer: BinanceTradingPeer) -> None:
    with engine_on_peer(peer) as engine:
        entry = engine.on_decision(decision("i-drop", qty=0.1, tp=101.0, sl=99.0))
        tp_id, sl_id, _ = ids.protective_ids(entry.client_order_id)
        peer.drop_user_streams(refuse_new=True)
        wait_until(lambda: not engine.venue.connected, what="the stream to notice")
        peer.trade(SYMBOL, "98.00")  # the stop triggers while nobody listens
        assert engine.orders[sl_id].status is OrderStatus.NEW
        peer.allow_streams()
        wait_until(
            lambda: (
                engine.orders[sl_id].status is OrderStatus.FILLED and engine.orders[tp_id].status is OrderStatus.EXPIRED
            ),
            what="reconcile after reconnect",
        )
        assert engine.positions[SYMBOL].flat and venue_position(peer) == 0
        assert engine.counters["reconciled_differences"] >= 1


def test_an_engine_killed_with_an_order_in_flight_recovers_it_and_places_no_duplicate(peer: BinanceTradingPeer) -> None:
    emitter = ListEmitter()
    # No user stream here: the engine must die before it hears anything about the in-flight order.
    with engine_on_peer(peer, emitter, max_attempts=2, max_wait_s=0.1, user_stream=False) as engine:
        engine.on_decision(decision("i-before", qty=0.05))
        peer.hang_next_orders(1, hold_s=5)
        worker = threading.Thread(target=engine.on_decision, args=(decision("i-inflight", qty=0.1, tp=105.0, sl=95.0),))
        worker.start()
        cid = ids.order_id(ids.ENTRY, "i-inflight")
        wait_until(lambda: peer.accepted.get(cid) == 1, what="the venue to accept the order")
        peer.ban_next(1, retry_after_s=60)  # and then the venue cannot be asked: the outcome stays unknown
        worker.join(30)
        assert engine.orders[cid].status is OrderStatus.PENDING
    # The engine is gone. What it persisted is all the restarted one knows.
    peer.lift_ban()
    with engine_on_peer(peer, ListEmitter()) as restarted:
        restarted.restore((k, r.SerializeToString()) for k, r in emitter.states)
        restarted.reconcile()
        order = restarted.orders[cid]
        assert order.status is OrderStatus.FILLED and order.filled_quantity == D("0.1")
        position = restarted.positions[SYMBOL]
        assert position.quantity == venue_position(peer) - position.baseline_quantity
        assert position.quantity == D("0.15") - D("0.00015")
        # Its protection is placed now, and the redelivered decision finds the order.
        tp_id, sl_id, _ = ids.protective_ids(cid)
        assert restarted.orders[tp_id].status is OrderStatus.NEW and restarted.orders[sl_id].status is OrderStatus.NEW
        restarted.on_decision(decision("i-inflight", qty=0.1, tp=105.0, sl=95.0))
        assert peer.order_requests[cid] == 1 and peer.accepted[cid] == 1


def test_a_post_only_entry_is_sent_as_limit_maker_and_refused_when_it_would_take(peer: BinanceTradingPeer) -> None:
    maker = risk_pb2.ORDER_TYPE_LIMIT_MAKER
    with engine_on_peer(peer) as engine:
        crossing = engine.on_decision(decision("i-maker-x", qty=0.1, order_type=maker, limit=100.0))
        assert crossing.status is OrderStatus.REJECTED
        assert (crossing.reject_code, crossing.reject_message) == ("-2010", "Order would immediately match and take.")
        resting = engine.on_decision(decision("i-maker", qty=0.1, order_type=maker, limit=99.9))
        assert resting.status is OrderStatus.NEW
        assert [(o.type, o.price) for o in peer.open_orders()] == [("LIMIT_MAKER", D("99.9"))]


def test_a_resting_entry_past_its_time_is_cancelled_on_the_venue(peer: BinanceTradingPeer) -> None:
    intent = decision("i-maker-ttl", qty=0.1, order_type=risk_pb2.ORDER_TYPE_LIMIT_MAKER, limit=99.9)
    intent.intent.entry_ttl_ns = 30_000_000_000
    with engine_on_peer(peer) as engine:
        order = engine.on_decision(intent)
        assert order.status is OrderStatus.NEW and order.expire_time_ns > 0
        engine.check_time_stops(order.expire_time_ns - 1)
        assert order.status is OrderStatus.NEW
        engine.check_time_stops(order.expire_time_ns)
        assert order.status is OrderStatus.CANCELED and peer.open_orders() == []

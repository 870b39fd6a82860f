"""The user data stream's connection hygiene against the local peer's WebSocket API: serverShutdown and
the 24-hour cut handled make-before-break (no event lost, none applied twice, no reconciliation
needed), and a watchdog that replaces a connection that stopped answering (then reconciles, as its
events may be lost)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from quantumedge.execution.domain import ids
from quantumedge.execution.domain.orders import OrderStatus
from tests.integration.execution.rig import SYMBOL, engine_on_peer, standard_book, wait_until
from tests.peers.binance_trading import BinanceTradingPeer
from tests.support.execution_builders import decision

D = Decimal


@pytest.fixture
def peer() -> Iterator[BinanceTradingPeer]:
    with BinanceTradingPeer(symbols=(SYMBOL,)) as p:
        standard_book(p)
        yield p


def reconciliations(peer: BinanceTradingPeer) -> int:
    """Each reconciliation lists the open orders (GET /api/v3/openOrders)."""
    return sum(1 for r in peer.requests if r[:2] == ("GET", "/api/v3/openOrders"))


def test_server_shutdown_is_handed_over_make_before_break(peer: BinanceTradingPeer) -> None:
    options = {"handover_overlap_s": 1.5}
    with engine_on_peer(peer, stream_options=options) as engine:
        stream = engine.venue.stream
        entry = engine.on_decision(decision("i-shutdown", qty=0.1, tp=101.0, sl=99.0))
        tp_id, sl_id, _ = ids.protective_ids(entry.client_order_id)
        before = reconciliations(peer)
        fills = engine.counters["fills"]
        assert peer.send_server_shutdown(close_after_s=None) == 1
        wait_until(lambda: stream.handovers == 1, what="a second connection to be subscribed")
        # Both connections are subscribed now (the old one is drained for the overlap): the take-profit
        # fills while both deliver its reports.
        assert peer.stream_count == 2 and stream.connected.is_set()
        peer.trade(SYMBOL, "101.50")
        wait_until(
            lambda: (
                engine.orders[tp_id].status is OrderStatus.FILLED and engine.orders[sl_id].status is OrderStatus.EXPIRED
            ),
            what="the take-profit via the stream",
        )
        wait_until(lambda: peer.stream_count == 1, what="the old connection to be closed after the overlap")
        assert stream.duplicates_dropped >= 1  # the same reports came twice, and were applied once
        assert engine.counters["fills"] == fills + 1 and engine.counters["unknown_updates"] == 0
        assert engine.positions[SYMBOL].flat and peer.balance("BTC") == 0
        assert reconciliations(peer) == before  # nothing was lost, so nothing had to be re-queried


def test_the_24_hour_cut_is_anticipated_make_before_break() -> None:
    # The peer cuts connections older than 2 s (Binance: 24 h); the client replaces its own at 1 s.
    with BinanceTradingPeer(symbols=(SYMBOL,), max_connection_age_s=2.0) as peer:
        standard_book(peer)
        with engine_on_peer(peer, stream_options={"max_connection_age_s": 1.0, "handover_overlap_s": 0.2}) as engine:
            stream = engine.venue.stream
            before = reconciliations(peer)
            first = peer.ws_connections_total
            wait_until(lambda: stream.handovers >= 2, what="two proactive handovers")
            assert peer.ws_connections_total >= first + 2 and stream.connected.is_set()
            order = engine.on_decision(decision("i-after-cut", qty=0.1, order_type=2, limit=90.0))
            peer.trade(SYMBOL, "89.00")
            wait_until(lambda: order.status is OrderStatus.FILLED, what="the fill via the replaced stream")
            assert reconciliations(peer) == before


def test_a_stream_that_stops_answering_is_replaced_and_what_it_lost_recovered(peer: BinanceTradingPeer) -> None:
    options = {"watchdog_interval_s": 0.3, "watchdog_timeout_s": 0.3}
    with engine_on_peer(peer, stream_options=options) as engine:
        stream = engine.venue.stream
        order = engine.on_decision(decision("i-quiet", qty=0.1, order_type=2, limit=90.0))
        assert order.status is OrderStatus.NEW
        assert peer.stall_user_streams() == 1
        peer.trade(SYMBOL, "89.00")  # its report is lost on the stalled connection
        wait_until(lambda: stream.watchdog_trips == 1, what="the watchdog to notice")
        wait_until(lambda: order.status is OrderStatus.FILLED, what="reconciliation after the replacement")
        assert stream.handovers >= 1 and stream.connected.is_set()
        assert engine.positions[SYMBOL].quantity == peer.balance("BTC")

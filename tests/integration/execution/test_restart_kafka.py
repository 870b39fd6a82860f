"""Kill -9 the execution service (a real process on a real Kafka broker, trading on the local Binance peer)
while an order is in flight and a stop triggers unseen; the restarted service recovers positions equal to
the venue's and places no duplicate."""

from __future__ import annotations

from decimal import Decimal

import grpc
import pytest
from kafka import KafkaAdminClient

from quantumedge.execution.domain import ids
from quantumedge.shared import topics
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.v1 import execution_pb2, execution_pb2_grpc
from tests.integration.execution.rig import SYMBOL, wait_until
from tests.peers.binance_trading import BinanceTradingPeer
from tests.support.execution_builders import decision
from tests.support.execution_procs import world as world
from tests.support.procs import spawn, stop, wait_serving
from tests.support.signing import signed_for_serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def wait_group_empty(bootstrap: str, group: str, timeout_s: float = 90) -> None:
    """A kill -9'd member stays in its consumer group until the broker's session timeout expires it
    (kafka-python's default is 45 s, longer than the bus waits for an assignment on start)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="qe-test-exec-restart")
    try:
        wait_until(lambda: not admin.describe_groups([group])[group]["members"], timeout_s, f"{group} to expire")
    finally:
        admin.close()


def start(world: dict, name: str):
    proc = spawn(["serve", "execution"], world["env"], world["logs"] / f"{name}.log")
    try:
        wait_serving(world["port"], timeout_s=90, proc=proc)
    except AssertionError:
        stop(proc)
        print((world["logs"] / f"{name}.log").read_text()[-4000:])
        raise
    return proc


def test_killed_and_restarted_service_recovers_positions_and_places_no_duplicate(world: dict) -> None:
    bus: KafkaBus = world["bus"]
    peer: BinanceTradingPeer = world["peer"]
    first = start(world, "first")
    try:
        bus.publish(topics.DECISIONS, SYMBOL, signed_for_serve(decision("k-1", qty=0.1, tp=105.0, sl=99.5)))
        bus.flush()
        a = ids.order_id(ids.ENTRY, "k-1")
        wait_until(lambda: len(peer.open_orders()) == 2, 60, "k-1 filled and its OCO on the venue")

        # The next order is accepted by the venue, whose answer then hangs; the service dies meanwhile.
        peer.hang_next_orders(1, hold_s=60)
        bus.publish(topics.DECISIONS, SYMBOL, signed_for_serve(decision("k-2", qty=0.2, tp=106.0, sl=98.0)))
        bus.flush()
        b = ids.order_id(ids.ENTRY, "k-2")
        wait_until(lambda: peer.accepted.get(b) == 1, 60, "k-2 accepted by the venue")
    finally:
        first.kill()
        first.wait(10)
    wait_group_empty(world["bootstrap"], f"{world['prefix']}execution")
    # While nobody watches, the market falls through k-1's stop: its stop fills, its take-profit expires.
    peer.release()
    peer.trade(SYMBOL, "99.00")
    a_tp, a_sl, _ = ids.protective_ids(a)
    assert peer.order_by_client_id(a_sl).status == "FILLED" and peer.order_by_client_id(a_tp).status == "EXPIRED"

    second = start(world, "second")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{world['port']}") as channel:
            stub = execution_pb2_grpc.ExecutionServiceStub(channel)

            def orders() -> dict[str, execution_pb2.Order]:
                return {o.client_order_id: o for o in stub.ListOrders(execution_pb2.ListOrdersRequest()).orders}

            b_tp, b_sl, _ = ids.protective_ids(b)
            wait_until(lambda: b_sl in orders(), 60, "k-2's protection after the restart")
            now = orders()
            assert now[b].status == execution_pb2.ORDER_STATUS_FILLED
            assert now[a_sl].status == execution_pb2.ORDER_STATUS_FILLED
            assert now[a_tp].status == execution_pb2.ORDER_STATUS_EXPIRED
            assert now[b_tp].status == now[b_sl].status == execution_pb2.ORDER_STATUS_NEW

            positions = {p.symbol: p for p in stub.ListPositions(execution_pb2.ListPositionsRequest()).positions}
            position = positions[SYMBOL]
            venue_quantity = peer.balance("BTC") - Decimal(repr(position.baseline_quantity))
            assert Decimal(repr(position.quantity)) == venue_quantity == Decimal("0.2") - Decimal("0.0002")

            # The decision for k-2 was never committed by the dead service: redelivered, and ignored.
            status = stub.GetStatus(execution_pb2.ExecutionServiceGetStatusRequest())
            assert status.duplicates_ignored >= 1 and status.venue == "testnet"
        # One order per intent on the venue, whatever happened.
        assert peer.order_requests[a] == 1 and peer.order_requests[b] == 1
        assert peer.accepted[a] == 1 and peer.accepted[b] == 1
        notes = [execution_pb2.ExecutionReport.FromString(r.value).note for r in bus.read_all(topics.REPORTS)]
        assert any(n.startswith("reconciled") for n in notes)
    finally:
        code = stop(second)
        print((world["logs"] / "second.log").read_text()[-3000:])
    assert code == 0

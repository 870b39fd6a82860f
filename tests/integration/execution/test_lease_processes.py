"""Two real execution processes for one account (a real Kafka broker, a real OpenBao server for the lease,
the local Binance peer as the venue): one trades, the other stays passive; kill -9 the active one and the
other takes over after the lease runs out, with no order sent twice."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kafka import KafkaAdminClient

from quantumedge.execution import ids
from quantumedge.shared import topics
from tests.integration.execution.rig import SYMBOL, wait_until
from tests.integration.execution.test_restart_kafka import world as world
from tests.support.execution_builders import decision
from tests.support.procs import free_port, spawn, stop, wait_serving
from tests.support.signing import signed_for_serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _not_serving(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
        except grpc.RpcError:
            return True
        return answer.status != health_pb2.HealthCheckResponse.SERVING


def _spawn(rig: dict, vault, name: str, port: int, lease_path: str):
    env = {
        **rig["env"],
        "QE_PORTS__EXECUTION": str(port),
        "QE_PORTS__EXECUTION_METRICS": "0",
        "QE_EXECUTION__LEASE": "vault",
        "QE_EXECUTION__LEASE_PATH": lease_path,
        "QE_EXECUTION__LEASE_DURATION_S": "6",
        "QE_EXECUTION__LEASE_RENEW_S": "1",
        "QE_EXECUTION__LEASE_MARGIN_S": "2",
        "QE_VAULT_ADDR": vault.addr,
        "QE_VAULT__AUTH_METHOD": "token",
        "QE_VAULT_TOKEN": vault.token,
    }
    return spawn(["serve", "execution"], env, rig["logs"] / f"{name}.log")


def _committed(rig: dict, topic: str) -> bool:
    """The active executor committed its consumer group's position on `topic` (what a successor resumes from)."""
    admin = KafkaAdminClient(bootstrap_servers=rig["bootstrap"], client_id="qe-test-lease")
    try:
        group = f"{rig['prefix']}execution"
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    name = f"{rig['prefix']}{topic}"
    return any(tp.topic == name and getattr(meta, "offset", meta) > 0 for tp, meta in offsets.items())


def _log(rig: dict, name: str) -> str:
    path: Path = rig["logs"] / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def test_two_executors_one_sender_and_a_takeover_without_a_second_order(world: dict, vault) -> None:
    bus, peer = world["bus"], world["peer"]
    lease_path = f"quantumedge/leases/{world['prefix'].rstrip('.')}"
    port_a, port_b = world["port"], free_port()
    a = _spawn(world, vault, "a", port_a, lease_path)
    b = None
    try:
        wait_serving(port_a, timeout_s=90, proc=a)
        b = _spawn(world, vault, "b", port_b, lease_path)
        wait_until(lambda: "LEASE_PASSIVE" in _log(world, "b"), 60, "b to see the lease held and stay passive")
        bus.publish(topics.DECISIONS, SYMBOL, signed_for_serve(decision("l-1", qty=0.1)))
        bus.flush()
        first = ids.order_id(ids.ENTRY, "l-1")
        wait_until(lambda: peer.accepted.get(first) == 1, 60, "l-1 traded by the active executor")
        wait_until(lambda: _committed(world, topics.DECISIONS), 30, "the active executor to commit l-1")
        assert _not_serving(port_b) and b.poll() is None  # passive: alive, not serving, sent nothing
        assert "execution started" not in _log(world, "b")
    finally:
        a.kill()  # kill -9: no release, the lease must run out
        a.wait(10)
    try:
        bus.publish(topics.DECISIONS, SYMBOL, signed_for_serve(decision("l-2", qty=0.1)))
        bus.flush()
        wait_serving(port_b, timeout_s=120, proc=b)
        assert "LEASE_ACQUIRED" in _log(world, "b")
        second = ids.order_id(ids.ENTRY, "l-2")
        # The consumer group hands b the decisions once the broker expires a's membership (its session timeout).
        wait_until(lambda: peer.accepted.get(second) == 1, 150, "l-2 traded by the executor that took over")
        # One order per intent on the venue: the takeover re-sent nothing the first executor had sent.
        assert peer.order_requests[first] == 1 and peer.accepted[first] == 1
        assert peer.order_requests[second] == 1
    finally:
        code = stop(b)
        print(_log(world, "a")[-2000:], _log(world, "b")[-3000:])
    assert code == 0

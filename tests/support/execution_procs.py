"""Real `quantumedge serve execution` processes on a real Kafka broker, trading on the local Binance peer:
the world they run in, and the two-executors-one-account takeover that every executor-lease backend must pass
(tests/integration/execution for Vault, tests/cluster for the Kubernetes Lease)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kafka import KafkaAdminClient

from quantumedge.execution.domain import ids
from quantumedge.shared import topics
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.config import KafkaSettings
from tests.peers.binance_trading import BinanceTradingPeer
from tests.support.execution_builders import SYMBOL, decision
from tests.support.procs import free_port, kafka_env, spawn, stop, wait_serving
from tests.support.signing import signed_for_serve
from tests.support.waiting import wait_for

SECRET = "peer-api-secret"  # pragma: allowlist secret
# Short enough for a test, long enough that a loaded 2-core machine renews in time (margin 2 s of 6 s).
LEASE_TIMING = {
    "QE_EXECUTION__LEASE_DURATION_S": "6",
    "QE_EXECUTION__LEASE_RENEW_S": "1",
    "QE_EXECUTION__LEASE_MARGIN_S": "2",
}


def standard_book(peer: BinanceTradingPeer) -> None:
    peer.set_book(
        SYMBOL,
        bids=[("99.90", "1"), ("99.80", "2"), ("99.70", "5")],
        asks=[("100.00", "0.03"), ("100.10", "0.05"), ("100.20", "5")],
    )


@contextmanager
def execution_world(bootstrap: str, logs: Path, name: str = "exec") -> Iterator[dict]:
    """Topics of their own on the broker, the Binance peer with a book, and the env of a serve process."""
    prefix = f"{name}-{uuid.uuid4().hex[:8]}."
    bus = KafkaBus(KafkaSettings(bootstrap=bootstrap, allow_plaintext=True, topic_prefix=prefix))
    bus.ensure_topics()
    with BinanceTradingPeer(symbols=(SYMBOL,)) as peer:
        standard_book(peer)
        port = free_port()
        env = {
            **kafka_env(bootstrap, prefix, {"execution": port}),
            "QE_SYMBOLS": f'["{SYMBOL}"]',
            "QE_VENUE": "testnet",
            "QE_EXECUTION__REST_URL": peer.rest_url,
            "QE_EXECUTION__WS_API_URL": peer.ws_url,
            "QE_EXECUTION__RECV_WINDOW_MS": "1000",
            "QE_EXECUTION__READ_TIMEOUT_S": "1",
            # The documented local-testnet path for keys (never for live): from the environment, not Vault.
            "QE_VAULT__ALLOW_ENV_CREDENTIALS": "true",
            "QE_EXCHANGE_API_KEY": peer.api_key,
            "QE_EXCHANGE_API_SECRET": SECRET,
            "QE_VAULT__OPERATOR_TOKEN_SHA256": "0" * 64,
        }
        try:
            rig = {"bus": bus, "peer": peer, "port": port, "env": env, "logs": logs}
            yield {**rig, "bootstrap": bootstrap, "prefix": prefix}
        finally:
            bus.close()


@pytest.fixture
def world(kafka_bootstrap: str, tmp_path: Path) -> Iterator[dict]:
    with execution_world(kafka_bootstrap, tmp_path, "exec-restart") as rig:
        yield rig


def log_of(rig: dict, name: str) -> str:
    path: Path = rig["logs"] / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def not_serving(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
        except grpc.RpcError:
            return True
        return answer.status != health_pb2.HealthCheckResponse.SERVING


def committed(rig: dict, topic: str) -> int:
    """How far the executors' consumer group committed on `topic` (where a successor resumes)."""
    admin = KafkaAdminClient(bootstrap_servers=rig["bootstrap"], client_id="qe-test-lease")
    try:
        group = f"{rig['prefix']}execution"
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    name = f"{rig['prefix']}{topic}"
    # A partition with no commit answers -1: only real positions count.
    return sum(max(getattr(meta, "offset", meta), 0) for tp, meta in offsets.items() if tp.topic == name)


@dataclass
class Takeover:
    """What the venue saw and how long the takeover took (seconds on the test's monotonic clock)."""

    intents: list[str]
    order_requests: dict[str, int]
    acquired_s: float = 0.0  # kill -> the survivor logs LEASE_ACQUIRED
    serving_s: float = 0.0  # kill -> the survivor reports SERVING
    traded_s: float = 0.0  # kill -> the last intent sent after the kill is accepted by the venue
    lease: dict[str, object] = field(default_factory=dict)

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.order_requests.values() if n > 1)

    def report(self, backend: str) -> str:
        return (
            f"\n  {backend} lease takeover: LEASE_ACQUIRED {self.acquired_s:.1f} s, SERVING {self.serving_s:.1f} s,"
            f" last order {self.traded_s:.1f} s after kill -9; {len(self.intents)} intents,"
            f" {sum(self.order_requests.values())} order requests, {self.duplicates} duplicates; {self.lease}"
        )


def _publish(rig: dict, intents: list[str]) -> None:
    for intent in intents:
        rig["bus"].publish(topics.DECISIONS, SYMBOL, signed_for_serve(decision(intent, qty=0.1)))
    rig["bus"].flush()


def _traded(peer: BinanceTradingPeer, intents: list[str]) -> Callable[[], bool]:
    return lambda: all(peer.accepted.get(ids.order_id(ids.ENTRY, i)) == 1 for i in intents)


def two_executors_takeover(
    rig: dict, lease_env: Mapping[str, str], per_side: int = 3, record: Callable[[], object] | None = None
) -> Takeover:
    """Executor a trades while b stays passive (alive, not serving, sending nothing); a is killed with SIGKILL
    (no release: the lease must run out) with decisions still coming; b takes over and trades what a left.
    Returns what the venue peer saw; the caller asserts on it, and on its backend's lease `record` (read
    just before the kill and after the takeover)."""
    peer: BinanceTradingPeer = rig["peer"]
    env = {**rig["env"], **LEASE_TIMING, **lease_env, "QE_PORTS__EXECUTION_METRICS": "0"}
    port_b = free_port()
    a = spawn(["serve", "execution"], env, rig["logs"] / "a.log")
    b = None
    before = [f"t-a{n}" for n in range(per_side)]
    after = [f"t-b{n}" for n in range(per_side)]
    result = Takeover(before + after, peer.order_requests)
    try:
        wait_serving(rig["port"], timeout_s=90, proc=a)
        b = spawn(["serve", "execution"], {**env, "QE_PORTS__EXECUTION": str(port_b)}, rig["logs"] / "b.log")
        wait_for(lambda: "LEASE_PASSIVE" in log_of(rig, "b"), 60, "b to see the lease held and stay passive")
        _publish(rig, before)
        wait_for(_traded(peer, before), 60, "the first intents traded by the active executor")
        wait_for(lambda: committed(rig, topics.DECISIONS) >= per_side, 30, "the active executor to commit them")
        assert not_serving(port_b) and b.poll() is None  # passive: alive, not serving, sent nothing
        assert "execution started" not in log_of(rig, "b")
        result.lease["a"] = lease_holder(log_of(rig, "a"))
        if record is not None:
            result.lease["before"] = record()
    finally:
        a.kill()
        a.wait(10)
    killed = time.monotonic()
    try:
        _publish(rig, after)  # while nobody holds the lease: they wait on the topic, uncommitted
        wait_for(lambda: "LEASE_ACQUIRED" in log_of(rig, "b"), 60, "b to take the lease over")
        result.acquired_s = time.monotonic() - killed
        wait_serving(port_b, timeout_s=120, proc=b)
        result.serving_s = time.monotonic() - killed
        # The group hands b the decisions once the broker expires a's membership (its session timeout).
        wait_for(_traded(peer, after), 150, "the later intents traded by the executor that took over")
        result.traded_s = time.monotonic() - killed
        result.lease["b"] = lease_holder(log_of(rig, "b"))
        if record is not None:
            result.lease["after"] = record()
        result.order_requests = dict(peer.order_requests)
    finally:
        code = stop(b) if b is not None else None
        print(log_of(rig, "a")[-2000:], log_of(rig, "b")[-3000:])
    assert code == 0
    return result


def lease_holder(log: str) -> str:
    """The holder identity a process logged with LEASE_ACQUIRED ("" if it never held the lease)."""
    for line in log.splitlines():
        found = re.search(r"execution-[0-9a-f]{12}", line) if "LEASE_ACQUIRED" in line else None
        if found:
            return found.group(0)
    return ""


def entry_ids(intents: list[str]) -> set[str]:
    return {ids.order_id(ids.ENTRY, i) for i in intents}

"""Mutual TLS on: risk and execution as separate `quantumedge serve` processes, each with its own certificate.
SubmitOrder keeps working (execution presents its own certificate to risk and forwards the operator's token),
ReviewOrder accepts execution's certificate as a service identity and nothing else without a token, and the
audit records name the caller: the operator and the certificate subject."""

from __future__ import annotations

import contextlib
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kafka import KafkaAdminClient

from quantumedge.shared import topics
from quantumedge.shared.auth import token_sha256
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.config import KafkaSettings
from quantumedge.v1 import common_pb2, control_pb2, execution_pb2, execution_pb2_grpc, risk_pb2, risk_pb2_grpc
from tests.support.execution_builders import SYMBOL, top, trade
from tests.support.pki import Leaf, TestCA
from tests.support.procs import free_port, kafka_env, spawn, stop
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SERVICES = ("execution", "risk")
OPERATOR = "e2e-mtls-operator"


def _credentials(ca: TestCA, leaf: Leaf | None) -> grpc.ChannelCredentials:
    if leaf is None:
        return grpc.ssl_channel_credentials(ca.pem)
    return grpc.ssl_channel_credentials(ca.pem, leaf.key, leaf.cert)


def _wait_serving_tls(port: int, creds: grpc.ChannelCredentials, proc) -> None:
    with grpc.secure_channel(f"127.0.0.1:{port}", creds) as channel:
        health = health_pb2_grpc.HealthStub(channel)

        def serving() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"process on port {port} exited with {proc.returncode}")
            with contextlib.suppress(grpc.RpcError):
                return health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1
            return False

        wait_for(serving, 60, f"port {port} SERVING over mutual TLS")


@pytest.fixture
def mtls(kafka_bootstrap: str, tmp_path: Path) -> Iterator[dict]:
    prefix = f"e2e-mtls-{uuid.uuid4().hex[:8]}."
    token = secrets.token_urlsafe(24)
    ports = {name: free_port() for name in SERVICES}
    ca = TestCA(tmp_path)
    leaves = {name: ca.issue(name, dns=("localhost",), ips=("127.0.0.1",)) for name in SERVICES}
    laptop = ca.issue("ops-laptop")
    base = {
        **kafka_env(kafka_bootstrap, prefix, ports),
        "QE_SYMBOLS": f'["{SYMBOL}"]',
        "QE_DATA_DIR": str(tmp_path / "var"),
        "QE_VAULT__OPERATOR_TOKEN_SHA256": f"{OPERATOR}:{token_sha256(token)}",
        "QE_EXECUTION__HEARTBEAT_INTERVAL_S": "1",
        "QE_VAULT__GRPC_TLS_CLIENT_CA_FILE": str(ca.file),
    }
    bus = KafkaBus(KafkaSettings(bootstrap=kafka_bootstrap, allow_plaintext=True, topic_prefix=prefix))
    bus.ensure_topics()
    procs: dict = {}
    channels: list[grpc.Channel] = []
    try:
        for name in SERVICES:
            env = base | {
                "QE_VAULT__GRPC_TLS_CERT_FILE": str(leaves[name].cert_file),
                "QE_VAULT__GRPC_TLS_KEY_FILE": str(leaves[name].key_file),
            }
            procs[name] = spawn(["serve", name], env, tmp_path / f"{name}.log")
            _wait_serving_tls(ports[name], _credentials(ca, laptop), procs[name])

        def channel(name: str, leaf: Leaf | None) -> grpc.Channel:
            channels.append(grpc.secure_channel(f"127.0.0.1:{ports[name]}", _credentials(ca, leaf)))
            return channels[-1]

        yield {
            "bus": bus,
            "ca": ca,
            "leaves": leaves,
            "laptop": laptop,
            "channel": channel,
            "operator": (("authorization", f"Bearer {token}"),),
        }
    finally:
        for ch in channels:
            ch.close()
        codes = {name: stop(p) for name, p in procs.items()}
        bus.close()
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="qe-test-e2e-mtls")
        with contextlib.suppress(Exception):
            admin.delete_topics([f"{prefix}{spec.name}" for spec in topics.ALL], timeout_ms=30_000)
        admin.close()
        for name in SERVICES:
            log_file = tmp_path / f"{name}.log"
            if log_file.exists():
                print(f"--- {name} (exit {codes.get(name)}) ---\n{log_file.read_text()[-3000:]}")


def _audits(bus: KafkaBus, method: str) -> list[control_pb2.ControlEvent]:
    events = [control_pb2.ControlEvent.FromString(r.value) for r in bus.read_all(topics.AUDIT)]
    return [e for e in events if e.audit.method.endswith(method)]


def test_submit_order_works_over_mutual_tls_and_review_order_needs_an_identity(mtls: dict) -> None:
    bus = mtls["bus"]
    execution = execution_pb2_grpc.ExecutionServiceStub(mtls["channel"]("execution", mtls["laptop"]))
    attempt = iter(range(1000))

    def approved() -> execution_pb2.SubmitOrderResponse | None:
        now = time.time_ns()
        bus.publish(topics.TRADES, SYMBOL, trade(now, 100.0, 1.0))
        bus.publish(topics.BOOK, SYMBOL, top(now + 1, 99.99, 50.0, 100.0, 50.0))
        bus.flush()
        request = execution_pb2.SubmitOrderRequest(
            symbol=SYMBOL,
            side=common_pb2.SIDE_BUY,
            order_type=risk_pb2.ORDER_TYPE_MARKET,
            quantity=0.1,
            request_id=f"mtls-{next(attempt)}",
        )
        answer = execution.SubmitOrder(request, metadata=mtls["operator"], timeout=15)
        return answer if answer.decision.approved else None

    answer = wait_for(approved, 40, "an approved manual order over mutual TLS")
    assert answer.order.client_order_id  # type: ignore[union-attr]

    # Risk's audit of the forwarded review names the operator and the certificate execution presented.
    reviews = wait_for(lambda: [a for a in _audits(bus, "RiskService/ReviewOrder") if a.audit.allowed], 15, "audit")
    assert {a.actor.subject for a in reviews} == {f"{OPERATOR}@execution"}  # type: ignore[union-attr]
    submits = [a for a in _audits(bus, "ExecutionService/SubmitOrder") if a.audit.allowed]
    assert submits and {a.actor.subject for a in submits} == {f"{OPERATOR}@ops-laptop"}

    intent = risk_pb2.OrderIntent(
        intent_id="mtls-direct", symbol=SYMBOL, side=common_pb2.SIDE_BUY, quantity=0.1, order_type=1
    )
    review = risk_pb2.ReviewOrderRequest(intent=intent)
    # Execution's own certificate is allow-listed for ReviewOrder (its service identity), without a token...
    as_execution = risk_pb2_grpc.RiskServiceStub(mtls["channel"]("risk", mtls["leaves"]["execution"]))
    assert as_execution.ReviewOrder(review, timeout=10).decision.decision_id
    identity = [a for a in _audits(bus, "RiskService/ReviewOrder") if a.actor.subject == "execution"]
    assert identity and identity[-1].audit.allowed
    # ...but not for anything else.
    with pytest.raises(grpc.RpcError) as err:
        as_execution.Halt(risk_pb2.HaltRequest(reason="not yours"), timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # The operator's laptop certificate without a token is nobody.
    as_laptop = risk_pb2_grpc.RiskServiceStub(mtls["channel"]("risk", mtls["laptop"]))
    with pytest.raises(grpc.RpcError) as err:
        as_laptop.ReviewOrder(review, timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    refused = [a for a in _audits(bus, "RiskService/ReviewOrder") if not a.audit.allowed]
    assert refused and refused[-1].actor.subject == "ops-laptop" and refused[-1].audit.reason_code == "unauthenticated"
    # And without any client certificate there is no connection at all.
    anonymous = risk_pb2_grpc.RiskServiceStub(mtls["channel"]("risk", None))
    with pytest.raises(grpc.RpcError) as err:
        anonymous.ReviewOrder(review, timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE

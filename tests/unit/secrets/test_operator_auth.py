"""Operator authentication on a real gRPC server on localhost: changing calls need the bearer token."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from quantumedge.settings import load_settings
from quantumedge.shared import topics
from quantumedge.shared.auth import (
    OperatorAuthInterceptor,
    OperatorTokens,
    build_interceptors,
    current_actor,
    operator_tokens,
)
from quantumedge.shared.bus import MemoryBus
from quantumedge.shared.grpc_server import GrpcServer
from quantumedge.v1 import control_pb2, ingest_pb2, ingest_pb2_grpc, risk_pb2, risk_pb2_grpc

TOKEN = "op-token-for-unit-tests-0123456789"
TOKEN_SHA256 = hashlib.sha256(TOKEN.encode()).hexdigest()
RISK = "quantumedge.v1.RiskService"


class _Risk(risk_pb2_grpc.RiskServiceServicer):
    """Tiny servicer: records who halted it."""

    def __init__(self) -> None:
        self.halted_by: list[str] = []

    def Halt(self, request, context):
        self.halted_by.append(current_actor())
        return risk_pb2.HaltResponse(halted=True)

    def GetStatus(self, request, context):
        return risk_pb2.RiskServiceGetStatusResponse(halted=bool(self.halted_by), halt_reason=current_actor())


class _Ingest(ingest_pb2_grpc.IngestServiceServicer):
    def Subscribe(self, request, context):
        for _ in range(2):
            yield ingest_pb2.SubscribeResponse()
        self.actor = current_actor()


class _Audit:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool, str, str]] = []
        self.codes: list[str] = []

    def __call__(self, method: str, allowed: bool, subject: str, detail: str, code: str = "") -> None:
        self.calls.append((method, allowed, subject, detail))
        self.codes.append(code)


def _serve(interceptor: grpc.ServerInterceptor, servicer: _Risk) -> GrpcServer:
    server = GrpcServer(
        0, [(risk_pb2_grpc.add_RiskServiceServicer_to_server, servicer, RISK)], [interceptor], host="127.0.0.1"
    )
    server.start()
    server.set_serving(True)
    return server


@pytest.fixture
def risk_server() -> Iterator[tuple[risk_pb2_grpc.RiskServiceStub, _Risk, _Audit, grpc.Channel]]:
    servicer, audit = _Risk(), _Audit()
    server = _serve(OperatorAuthInterceptor(OperatorTokens.parse(TOKEN_SHA256), audit), servicer)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield risk_pb2_grpc.RiskServiceStub(channel), servicer, audit, channel
    finally:
        channel.close()
        server.stop(0)


def test_halt_without_token_is_unauthenticated_and_audited(risk_server) -> None:
    stub, servicer, audit, _ = risk_server
    with pytest.raises(grpc.RpcError) as err:
        stub.Halt(risk_pb2.HaltRequest(reason="test"))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "authorization: Bearer" in err.value.details()
    assert servicer.halted_by == []
    assert len(audit.calls) == 1
    method, allowed, subject, detail = audit.calls[0]
    assert (method, allowed, subject) == ("/quantumedge.v1.RiskService/Halt", False, "")
    assert "missing" in detail and "peer=" in detail


def test_halt_with_token_works_and_the_servicer_knows_the_actor(risk_server) -> None:
    stub, servicer, audit, _ = risk_server
    # A client-supplied x-qe-actor is not trusted: the subject comes from the verified token.
    metadata = (("authorization", f"Bearer {TOKEN}"), ("x-qe-actor", "mallory"))
    assert stub.Halt(risk_pb2.HaltRequest(reason="test"), metadata=metadata).halted is True
    assert servicer.halted_by == ["operator"]
    assert audit.calls == [("/quantumedge.v1.RiskService/Halt", True, "operator", audit.calls[0][3])]


def test_wrong_or_malformed_token_is_refused_and_never_echoed(risk_server) -> None:
    stub, servicer, audit, _ = risk_server
    for value in ("Bearer not-the-token-at-all", "Basic abc", f"{TOKEN}"):
        with pytest.raises(grpc.RpcError) as err:
            stub.Halt(risk_pb2.HaltRequest(), metadata=(("authorization", value),))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "not-the-token" not in err.value.details() and TOKEN not in err.value.details()
    assert servicer.halted_by == []
    assert [c[1] for c in audit.calls] == [False, False, False]
    assert all(TOKEN not in c[3] and "not-the-token" not in c[3] for c in audit.calls)


def test_read_only_calls_and_health_stay_open(risk_server) -> None:
    stub, _, audit, channel = risk_server
    status = stub.GetStatus(risk_pb2.RiskServiceGetStatusRequest())
    assert status.halted is False and status.halt_reason == ""  # no actor on an open call
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=RISK))
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert audit.calls == []


def test_no_hash_configured_fails_closed_with_what_to_configure() -> None:
    settings = load_settings(embedded=True)
    tokens = operator_tokens(settings, "risk")
    assert not tokens
    servicer, audit = _Risk(), _Audit()
    server = _serve(OperatorAuthInterceptor(tokens, audit), servicer)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        with pytest.raises(grpc.RpcError) as err:
            risk_pb2_grpc.RiskServiceStub(channel).Halt(
                risk_pb2.HaltRequest(), metadata=(("authorization", f"Bearer {TOKEN}"),)
            )
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "QE_VAULT__OPERATOR_TOKEN_SHA256" in err.value.details()
        assert servicer.halted_by == [] and audit.calls[0][1] is False
    finally:
        channel.close()
        server.stop(0)


def test_named_tokens_and_a_failing_audit_sink_do_not_block_a_halt() -> None:
    other = "second-operator-token-abcdefghijkl"
    spec = f"alice:{TOKEN_SHA256},bob:{hashlib.sha256(other.encode()).hexdigest()}"
    settings = load_settings(vault={"operator_token_sha256": spec})

    def broken_audit(*_args: object) -> None:
        raise RuntimeError("audit sink down")

    servicer = _Risk()
    server = _serve(OperatorAuthInterceptor(operator_tokens(settings, "risk"), broken_audit), servicer)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        stub = risk_pb2_grpc.RiskServiceStub(channel)
        stub.Halt(risk_pb2.HaltRequest(), metadata=(("authorization", f"Bearer {other}"),))
        stub.Halt(risk_pb2.HaltRequest(), metadata=(("authorization", f"bearer {TOKEN}"),))
        assert servicer.halted_by == ["bob", "alice"]
    finally:
        channel.close()
        server.stop(0)


def test_streaming_methods_are_wrapped_too() -> None:
    servicer = _Ingest()
    interceptor = OperatorAuthInterceptor(
        OperatorTokens.parse(TOKEN_SHA256), protected=["/quantumedge.v1.IngestService/Subscribe"]
    )
    server = GrpcServer(
        0,
        [(ingest_pb2_grpc.add_IngestServiceServicer_to_server, servicer, "quantumedge.v1.IngestService")],
        [interceptor],
        host="127.0.0.1",
    )
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            list(stub.Subscribe(ingest_pb2.SubscribeRequest()))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        got = list(stub.Subscribe(ingest_pb2.SubscribeRequest(), metadata=(("authorization", f"Bearer {TOKEN}"),)))
        assert len(got) == 2 and servicer.actor == "operator"
    finally:
        channel.close()
        server.stop(0)


def test_build_interceptors_audits_on_the_audit_topic_never_on_control() -> None:
    bus = MemoryBus()
    settings = load_settings(embedded=True, bus="memory", vault={"operator_token_sha256": TOKEN_SHA256})
    assert build_interceptors(settings, bus, "ingest") == []  # no changing calls there
    servicer = _Risk()
    server = _serve(build_interceptors(settings, bus, "risk")[0], servicer)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        stub = risk_pb2_grpc.RiskServiceStub(channel)
        with pytest.raises(grpc.RpcError):
            stub.Halt(risk_pb2.HaltRequest())
        stub.Halt(risk_pb2.HaltRequest(), metadata=(("authorization", f"Bearer {TOKEN}"),))
    finally:
        channel.close()
        server.stop(0)
    assert bus.read_all(topics.CONTROL) == []  # the compacted topic every start-up reads stays as it was
    records = bus.read_all(topics.AUDIT)
    events = [control_pb2.ControlEvent.FromString(r.value) for r in records]
    assert [(e.audit.method, e.audit.allowed, e.actor.subject, e.audit.reason_code) for e in events] == [
        ("/quantumedge.v1.RiskService/Halt", False, "anonymous", "unauthenticated"),
        ("/quantumedge.v1.RiskService/Halt", True, "operator", ""),
    ]
    assert all(r.key == b"risk" for r in records) and len({e.event_id for e in events}) == 2
    assert events[0].audit.service == "risk" and events[0].audit.outcome.startswith("refused")
    assert events[0].actor.source.startswith("ipv4:127.0.0.1:")  # the caller's address
    bus.close()


def test_failed_authentications_are_throttled_per_peer_but_a_valid_token_never_is() -> None:
    from quantumedge.shared.throttle import PeerThrottle

    servicer, audit = _Risk(), _Audit()
    interceptor = OperatorAuthInterceptor(
        OperatorTokens.parse(TOKEN_SHA256), audit, throttle=PeerThrottle(burst=5, per_minute=0.001)
    )
    server = _serve(interceptor, servicer)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        stub = risk_pb2_grpc.RiskServiceStub(channel)
        codes = []
        for _ in range(200):
            with pytest.raises(grpc.RpcError) as err:
                stub.Halt(risk_pb2.HaltRequest(), metadata=(("authorization", "Bearer wrong"),))
            codes.append(err.value.code())
        assert codes[:5] == [grpc.StatusCode.UNAUTHENTICATED] * 5
        assert set(codes[5:]) == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert len(audit.calls) <= 6 and audit.codes[:5] == ["unauthenticated"] * 4 + ["throttled"]
        # The kill switch stays usable from the same address during the flood.
        assert stub.Halt(risk_pb2.HaltRequest(), metadata=(("authorization", f"Bearer {TOKEN}"),)).halted
        assert servicer.halted_by == ["operator"] and audit.calls[-1][1] is True
    finally:
        channel.close()
        server.stop(0)

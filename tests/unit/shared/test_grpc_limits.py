"""Per-server call and stream limits: idle streams can never starve the health check."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from quantumedge.ingest.service import IngestService
from quantumedge.ingest.source import Emit
from quantumedge.settings import Settings, load_settings
from quantumedge.shared.bus import MemoryBus
from quantumedge.shared.config import ConfigError
from quantumedge.shared.grpc_server import GrpcServer
from quantumedge.v1 import ingest_pb2, ingest_pb2_grpc


class _Silent:
    """A market that says nothing: every Subscribe stream stays idle."""

    name = "silent"

    def run(self, emit: Emit, stop: threading.Event) -> None:
        stop.wait()

    def stream_status(self) -> list:
        return []


@pytest.fixture
def ingest() -> Iterator[GrpcServer]:
    settings = Settings(bus="memory", symbols=["BTCUSDT"])
    bus = MemoryBus()
    service = IngestService(settings, bus, source=_Silent())
    limits = settings.grpc
    server = GrpcServer(
        0,
        service.grpc_services(),
        host="127.0.0.1",
        max_workers=limits.max_workers,
        max_concurrent_rpcs=limits.max_concurrent_rpcs,
        max_streams=limits.max_streams,
    )
    server.start()
    service.start()
    server.set_serving(True)
    yield server
    server.stop(0)
    service.stop()
    bus.close()


def test_64_idle_subscribe_streams_leave_health_serving(ingest: GrpcServer) -> None:
    channels = [grpc.insecure_channel(f"127.0.0.1:{ingest.port}") for _ in range(8)]
    calls = [
        ingest_pb2_grpc.IngestServiceStub(channels[i % 8]).Subscribe(ingest_pb2.SubscribeRequest(symbol="BTCUSDT"))
        for i in range(64)
    ]
    refused = []

    def first(call) -> None:
        try:
            next(call)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                refused.append(exc)

    threads = [threading.Thread(target=first, args=(c,), daemon=True) for c in calls]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 20
        while len(refused) < 64 - 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(refused) == 64 - 8  # the streams over max_streams are answered at once
        assert ingest.limits.streams.used == 8
        with grpc.insecure_channel(f"127.0.0.1:{ingest.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for _ in range(20):
                answer = health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                assert answer.status == health_pb2.HealthCheckResponse.SERVING
            # Unary calls still have room beside the idle streams.
            status = ingest_pb2_grpc.IngestServiceStub(channel).GetStatus(
                ingest_pb2.IngestServiceGetStatusRequest(), timeout=2
            )
            assert status.source == "silent"
    finally:
        for call in calls:
            call.cancel()
        for channel in channels:
            channel.close()
    deadline = time.monotonic() + 10
    while ingest.limits.streams.used and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ingest.limits.streams.used == 0 and ingest.limits.calls.used == 0  # cancelled streams give slots back


def test_limits_must_leave_room_for_health_checks() -> None:
    with pytest.raises(ConfigError, match="max_concurrent_rpcs"):
        load_settings(grpc={"max_workers": 8, "max_concurrent_rpcs": 8})
    with pytest.raises(ConfigError, match="max_streams"):
        load_settings(grpc={"max_concurrent_rpcs": 6, "max_streams": 6})


def test_embedded_mode_listens_on_loopback_only() -> None:
    from quantumedge.embedded import embedded_settings

    everywhere = Settings(grpc_host="0.0.0.0")  # what a pod uses
    assert embedded_settings(everywhere, steps=10).grpc_host == "127.0.0.1"

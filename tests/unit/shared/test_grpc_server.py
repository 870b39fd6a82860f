"""Every server serves Health and reflection, and drains on stop."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from quantumedge.shared.grpc_server import GrpcServer
from quantumedge.v1 import ingest_pb2, ingest_pb2_grpc


class _Ingest(ingest_pb2_grpc.IngestServiceServicer):
    def GetStatus(self, request, context):
        return ingest_pb2.IngestServiceGetStatusResponse(source="test", running=True)


def test_health_reflection_and_graceful_stop() -> None:
    server = GrpcServer(
        0,
        [(ingest_pb2_grpc.add_IngestServiceServicer_to_server, _Ingest(), "quantumedge.v1.IngestService")],
        host="127.0.0.1",
    )
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        health = health_pb2_grpc.HealthStub(channel)
        req = health_pb2.HealthCheckRequest(service="quantumedge.v1.IngestService")
        assert health.Check(req).status == health_pb2.HealthCheckResponse.NOT_SERVING
        server.set_serving(True)
        assert health.Check(req).status == health_pb2.HealthCheckResponse.SERVING

        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        answer = next(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
        names = {s.name for s in answer.list_services_response.service}
        assert {"quantumedge.v1.IngestService", "grpc.health.v1.Health"} <= names

        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        assert stub.GetStatus(ingest_pb2.IngestServiceGetStatusRequest()).source == "test"
    finally:
        server.stop(0.5)
        channel.close()

"""`quantumedge health` (the chart's helm test hook) against a real gRPC server with the stock HealthServicer."""

from __future__ import annotations

from quantumedge.cli import main
from quantumedge.shared.grpc_server import GrpcServer
from quantumedge.shared.health_check import check
from quantumedge.v1 import ingest_pb2_grpc
from tools.harness.process import free_port

SERVICE = "quantumedge.v1.IngestService"


def test_health_answers_follow_the_server(capsys) -> None:
    server = GrpcServer(
        0,
        [(ingest_pb2_grpc.add_IngestServiceServicer_to_server, ingest_pb2_grpc.IngestServiceServicer(), SERVICE)],
        host="127.0.0.1",
    )
    server.start()
    address = f"127.0.0.1:{server.port}"
    try:
        assert check(address, SERVICE).status == "NOT_SERVING"
        assert main(["health", address, "--service", SERVICE]) == 1
        server.set_serving(True)
        assert check(address, SERVICE).serving
        assert main(["health", address, "--service", SERVICE]) == 0
        assert f"{address} {SERVICE}: SERVING" in capsys.readouterr().out
        assert check(address, "quantumedge.v1.NoSuchService").status == "SERVICE_UNKNOWN"
    finally:
        server.stop(0)


def test_no_server_is_an_answer_not_a_traceback(capsys) -> None:
    address = f"127.0.0.1:{free_port()}"
    assert main(["health", address, "--timeout", "0.5"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{address} (server): ") and ("UNAVAILABLE" in out or "DEADLINE_EXCEEDED" in out)

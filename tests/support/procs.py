"""Helpers to run `quantumedge` as real processes in tests and wait on their gRPC health."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from quantumedge.risk.settings import RiskSettings
from quantumedge.shared import topics
from quantumedge.shared.bus import Bus
from quantumedge.v1 import execution_pb2
from tests.support.signing import signing_env

ROOT = Path(__file__).resolve().parents[2]
QUANTUMEDGE = [sys.executable, "-m", "quantumedge.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kafka_env(
    bootstrap: str, prefix: str, ports: Mapping[str, int] | None = None, *, protocol: str = "PLAINTEXT"
) -> dict[str, str]:
    """What every `quantumedge serve` process of a test needs: the real broker, the test's own topics,
    loopback gRPC, a port per service, and the signing keys (tests.support.signing).

    The session broker is a local plaintext one, which the services refuse unless told it is allowed; with
    protocol="SASL_SSL" plaintext stays refused and each process reads its credentials from Vault."""
    return {
        "QE_BUS": "kafka",
        "QE_KAFKA_BOOTSTRAP": bootstrap,
        "QE_KAFKA__TOPIC_PREFIX": prefix,
        "QE_KAFKA__SECURITY_PROTOCOL": protocol,
        "QE_KAFKA__ALLOW_PLAINTEXT": str(protocol == "PLAINTEXT").lower(),
        "QE_GRPC_HOST": "127.0.0.1",
        **{f"QE_PORTS__{name.upper()}": str(port) for name, port in (ports or {}).items()},
        # Risk signs with the test session's key; execution and risk verify with its public half.
        **signing_env(),
    }


def synthetic_env(speed: float) -> dict[str, str]:
    """An endless synthetic market at `speed` times real time, with risk's market-time bound on how far a
    signal may trail its book scaled to match: 5 s of market is 0.25 s of wall at speed 20, under a loaded
    machine's latency, where live (speed 1) allows 5 s. The bound keeps its wall-time meaning."""
    lag_ns = int(RiskSettings().book_sync_max_signal_lag_ns * max(1.0, speed))
    return {
        "QE_INGEST__SOURCE": "synthetic",
        "QE_INGEST__SYNTHETIC_STEPS": "0",
        "QE_INGEST__SYNTHETIC_SPEED": f"{speed:g}",
        "QE_RISK__BOOK_SYNC_MAX_SIGNAL_LAG_NS": str(lag_ns),
    }


def wait_serving(port: int, timeout_s: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until the server on `port` reports SERVING (fail early if its process died)."""
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"process on port {port} exited with {proc.returncode}")
            try:
                answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server on port {port} never became SERVING")
            time.sleep(0.2)


def spawn(args: list[str], env: Mapping[str, str], log_path: Path) -> subprocess.Popen:
    """Start `quantumedge ARGS` with stdin closed (nothing may prompt) and output in a log file.

    Metrics ports the caller did not choose are free ones: the documented defaults (9101-9105) would collide
    with other processes of this run (a module-scoped fixture starts before the per-test ports are set) and
    with anything else on the machine."""
    names = ("INGEST", "INFERENCE", "RISK", "EXECUTION", "NOTIFY")
    metrics = {f"QE_PORTS__{n}_METRICS": str(free_port()) for n in names}
    full_env = {**metrics, **os.environ, "PYTHONUNBUFFERED": "1", **env}
    log = log_path.open("wb")
    return subprocess.Popen(
        [*QUANTUMEDGE, *args], env=full_env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
    )


def stop(proc: subprocess.Popen, timeout_s: float = 20.0) -> int:
    """SIGTERM then wait (the graceful path the platform uses); kill only if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def fills(bus: Bus) -> list[execution_pb2.ExecutionReport]:
    """Every fill report on execution.reports.v1 so far."""
    reports = [execution_pb2.ExecutionReport.FromString(r.value) for r in bus.read_all(topics.REPORTS)]
    return [r for r in reports if r.HasField("fill")]


def print_logs(logs: Path, codes: Mapping[str, int | None], services: Sequence[str], tail_chars: int = 3000) -> None:
    """The end of each service's log with its exit code, shown when a test fails."""
    for name in services:
        log_file = logs / f"{name}.log"
        if log_file.exists():
            print(f"--- {name} (exit {codes.get(name)}) ---\n{log_file.read_text()[-tail_chars:]}")

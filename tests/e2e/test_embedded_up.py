"""`quantumedge up`: all four services in one process, no Kafka, no Vault, no secrets, no prompts."""

from __future__ import annotations

import builtins
import getpass
import signal
from pathlib import Path

import grpc
import hvac
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from quantumedge.embedded import run_up
from quantumedge.settings import load_settings
from tests.support.procs import free_port, spawn, wait_serving

SERVICES = {
    "ingest": "quantumedge.v1.IngestService",
    "inference": "quantumedge.v1.InferenceService",
    "risk": "quantumedge.v1.RiskService",
    "execution": "quantumedge.v1.ExecutionService",
}


def _listed(port: int) -> set[str]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        answer = next(stub.ServerReflectionInfo(iter([request]), timeout=10))
    return {s.name for s in answer.list_services_response.service}


def test_up_lists_all_four_services_and_health_by_reflection_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    ports = {name: free_port() for name in SERVICES}
    env = {f"QE_PORTS__{n.upper()}": str(p) for n, p in ports.items()}
    env |= {"QE_GRPC_HOST": "127.0.0.1", "QE_DATA_DIR": str(tmp_path / "var")}
    log = tmp_path / "up.log"
    proc = spawn(["up", "--steps", "0"], env, log)
    try:
        for port in ports.values():
            wait_serving(port, proc=proc)
        seen: set[str] = set()
        for name, port in ports.items():
            listed = _listed(port)
            assert SERVICES[name] in listed and "grpc.health.v1.Health" in listed
            seen |= listed
        assert set(SERVICES.values()) | {"grpc.health.v1.Health"} <= seen
        proc.send_signal(signal.SIGINT)  # Ctrl-C ends it cleanly, with the summary
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text()
    assert "ticks in" in out and "fills" in out, out[-2000:]


def test_embedded_run_fills_orders_without_reading_a_secret_or_prompting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[str] = []

    def forbidden(what: str):
        def _raise(*_a, **_k):
            calls.append(what)
            raise AssertionError(f"embedded mode must not {what}")

        return _raise

    monkeypatch.setattr(hvac.Client, "__init__", forbidden("create a Vault client"))
    monkeypatch.setattr(builtins, "input", forbidden("prompt (input)"))
    monkeypatch.setattr(getpass, "getpass", forbidden("prompt (getpass)"))
    # Even with Vault settings in the environment, embedded mode must not use them.
    monkeypatch.setenv("QE_VAULT_ADDR", "http://127.0.0.1:9")
    monkeypatch.setenv("QE_VAULT_TOKEN", "embedded-must-not-use-this")
    monkeypatch.setenv("QE_DATA_DIR", str(tmp_path / "var"))
    for name in SERVICES:
        monkeypatch.setenv(f"QE_PORTS__{name.upper()}", str(free_port()))
    monkeypatch.setenv("QE_GRPC_HOST", "127.0.0.1")

    summary = run_up(load_settings(), steps=1500, handle_signals=False)

    assert calls == []
    assert summary.ticks > 0 and summary.signals > 0
    assert summary.intents > 0 and summary.fills > 0
    assert summary.dead_letters == 0

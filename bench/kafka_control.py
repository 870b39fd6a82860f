"""Halt -> execution, REDUCING -> execution and the gRPC Predict round trip, against `quantumedge serve` processes
(execution on the paper venue, risk, inference) on a real broker: part of bench/kafka_e2e_bench.py.

Each round calls the RPC with the operator's token, then waits (bounded) until execution has logged applying it.
Afterwards control.v1 is read back: a record's own time (ControlEvent.time_ns, stamped by risk when it wrote the
record) is matched with execution's log line for it (the halt's event id; a Reduce/Activate by its unique reason).
Execution's log time has millisecond resolution, so each figure is good to about 1 ms. A round execution never
logs, or a record that cannot be matched, fails the bench: it never prints a figure it did not measure.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc

from quantumedge.settings import Settings
from quantumedge.shared import topics
from quantumedge.shared.auth import token_sha256
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.config import KafkaSettings
from quantumedge.v1 import control_pb2, inference_pb2, inference_pb2_grpc, risk_pb2, risk_pb2_grpc
from tests.support.procs import free_port, kafka_env, spawn, stop, wait_serving

SERVICES = ("execution", "risk", "inference")  # execution first: nothing risk writes goes unheard
ROUNDS = int(os.environ.get("QE_BENCH_CONTROL_ROUNDS", "20"))
PREDICTS = int(os.environ.get("QE_BENCH_PREDICTS", "500"))
WAIT_S = 15.0


class ControlBenchError(RuntimeError):
    """A control figure could not be measured; the message says which and why."""


class ExecutionLog:
    """Execution's JSON log, read as it grows: the lines that say a control record was applied."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.lines: list[dict[str, Any]] = []

    def poll(self) -> None:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        for raw in complete.splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if isinstance(line, dict) and line.get("logger", "").startswith("quantumedge.execution"):
                self.lines.append(line)

    def wait(self, found: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            self.poll()
            for line in self.lines:
                if found(line):
                    return line
            time.sleep(0.01)
        raise ControlBenchError(f"execution never logged {what} within {WAIT_S:.0f} s")


def _log_ns(line: dict[str, Any]) -> int:
    stamp = datetime.strptime(line["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return int(stamp.timestamp() * 1000) * 1_000_000


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _line(name: str, values: list[float]) -> dict[str, float]:
    if not values:
        raise ControlBenchError(f"{name}: no samples")
    p50, p99 = _pct(values, 0.5), _pct(values, 0.99)
    tail = f"p99 {p99:8.2f} ms" if len(values) >= 100 else f"p99 (max of {len(values)}) {max(values):8.2f} ms"
    print(f"  {name:<44} n={len(values):>4}  p50 {p50:8.2f} ms  {tail}")
    return {f"{name}_p50_ms": p50, f"{name}_p99_ms": p99, f"{name}_n": float(len(values))}


def _halt_rounds(stub: Any, operator: tuple, log: ExecutionLog) -> None:
    """Halt then Resume, ROUNDS times, each waited for in execution's log before the next."""
    for i in range(ROUNDS):
        for verb, message in (("halt", "execution halted"), ("resume", "execution resumed")):
            reason = f"bench {verb} {i} {uuid.uuid4().hex[:6]}"
            seen = sum(1 for line in log.lines if line.get("msg") == message)
            if verb == "halt":
                stub.Halt(risk_pb2.HaltRequest(reason=reason), metadata=operator, timeout=10)
            else:
                stub.Resume(risk_pb2.ResumeRequest(reason=reason), metadata=operator, timeout=10)
            log.wait(lambda _line, m=message, n=seen: sum(1 for x in log.lines if x.get("msg") == m) > n, message)


def _reduce_rounds(stub: Any, operator: tuple, log: ExecutionLog, symbol: str) -> None:
    """Reduce then Activate one symbol, ROUNDS times, each waited for in execution's log before the next."""
    for i in range(ROUNDS):
        for verb in ("reduce", "activate"):
            reason = f"bench {verb} {i} {uuid.uuid4().hex[:6]}"
            if verb == "reduce":
                stub.Reduce(risk_pb2.ReduceRequest(symbol=symbol, reason=reason), metadata=operator, timeout=10)
            else:
                stub.Activate(risk_pb2.ActivateRequest(symbol=symbol, reason=reason), metadata=operator, timeout=10)
            log.wait(lambda line, r=reason: _is_state_line(line) and r in str(line.get("reason", "")), f"{verb} {i}")


def _is_state_line(line: dict[str, Any]) -> bool:
    return line.get("msg") == "trading state changed" and "scope" in line


def _match(records: list[control_pb2.ControlEvent], log: ExecutionLog) -> dict[str, list[float]]:
    """Record time -> execution's log time, per kind: halts and resumes by event id, states by reason."""
    applied = {line.get("cause"): _log_ns(line) for line in log.lines if line.get("msg", "").startswith("execution ")}
    states = [line for line in log.lines if _is_state_line(line)]
    out: dict[str, list[float]] = {"halt": [], "resume": [], "reduce": [], "activate": []}
    for event in records:
        kind = event.WhichOneof("payload")
        if kind == "halt" and event.reason.startswith("bench ") and event.event_id in applied:
            verb = "halt" if event.halt.halted else "resume"
            out[verb].append((applied[event.event_id] - event.time_ns) / 1e6)
        elif kind == "trading_state" and event.reason.startswith(("bench reduce", "bench activate")):
            # Matched by the call's unique reason (a halt's own state records carry "bench halt ...").
            line = next((s for s in states if event.reason in str(s.get("reason", ""))), None)
            verb = event.reason.split()[1]
            if line is not None:
                out[verb].append((_log_ns(line) - event.time_ns) / 1e6)
    for verb, values in out.items():
        if len(values) != ROUNDS:
            raise ControlBenchError(f"{verb}: {len(values)} of {ROUNDS} control records matched to execution's log")
    return out


def _predict(channel: grpc.Channel, symbol: str) -> list[float]:
    """The Predict round trip (client side, a valid feature vector of the served schema)."""
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    names = stub.ListModels(inference_pb2.ListModelsRequest(), timeout=10).feature_names
    if not names:
        raise ControlBenchError("inference lists no feature names: Predict cannot be called")
    request = inference_pb2.PredictRequest(symbol=symbol, features=[0.0] * len(names))
    for _ in range(20):  # warm-up: the channel, the first ONNX runs
        stub.Predict(request, timeout=10)
    times = []
    for _ in range(PREDICTS):
        start = time.perf_counter_ns()
        stub.Predict(request, timeout=10)
        times.append((time.perf_counter_ns() - start) / 1e6)
    return times


def bench_control(bootstrap: str, work: Path) -> dict[str, float]:
    prefix = f"bench-ctl-{uuid.uuid4().hex[:6]}."
    token = secrets.token_urlsafe(24)
    ports = {name: free_port() for name in SERVICES}
    symbol = Settings().symbols[0]
    env = {
        **kafka_env(bootstrap, prefix, ports),
        "QE_DATA_DIR": str(work / "var"),
        "QE_VAULT__OPERATOR_TOKEN_SHA256": f"bench:{token_sha256(token)}",
        "QE_LOG_LEVEL": "WARNING",
    }
    bus = KafkaBus(KafkaSettings(bootstrap=bootstrap, allow_plaintext=True, topic_prefix=prefix))
    bus.ensure_topics()
    procs = {}
    channels: dict[str, grpc.Channel] = {}
    try:
        for name in SERVICES:
            # Execution at INFO: its "applied" lines for resumes and trading states are INFO.
            own = {**env, "QE_LOG_LEVEL": "INFO"} if name == "execution" else env
            procs[name] = spawn(["serve", name], own, work / f"ctl-{name}.log")
        for name in SERVICES:
            wait_serving(ports[name], timeout_s=180, proc=procs[name])
            channels[name] = grpc.insecure_channel(f"127.0.0.1:{ports[name]}")
        risk = risk_pb2_grpc.RiskServiceStub(channels["risk"])
        operator = (("authorization", f"Bearer {token}"),)
        log = ExecutionLog(work / "ctl-execution.log")
        _halt_rounds(risk, operator, log)
        _reduce_rounds(risk, operator, log, symbol)
        predict = _predict(channels["inference"], symbol)
        log.poll()
        matched = _match([control_pb2.ControlEvent.FromString(r.value) for r in bus.read_all(topics.CONTROL)], log)
    except AssertionError as exc:
        raise ControlBenchError(f"the services did not start: {exc}") from None
    finally:
        for channel in channels.values():
            channel.close()
        for proc in procs.values():
            stop(proc)
        bus.close()
    out = _line("HaltState record -> execution halted", matched["halt"])
    out |= _line("Resume record -> execution resumed", matched["resume"])
    out |= _line("REDUCING record -> execution reducing", matched["reduce"])
    out |= _line("ACTIVE record -> execution active", matched["activate"])
    out |= _line("gRPC Predict round trip", predict)
    return out

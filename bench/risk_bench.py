"""Risk figures: decision latency per signal (in-process), halt propagation over Kafka, and restart time from
the whole execution.reports.v1 topic against restart from the ledger checkpoint plus the reports after it.

Halt propagation = from calling the Halt RPC to a consumer on control.v1 (as execution runs one)
holding the HaltState record. Target: < 100 ms over Kafka on this machine.
"""

from __future__ import annotations

import logging
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from quantumedge.risk.domain.engine import RiskEngine
from quantumedge.risk.service import RiskService
from quantumedge.risk.settings import RiskSettings
from quantumedge.settings import Settings
from quantumedge.shared import topics
from quantumedge.shared.auth import OperatorAuthInterceptor, OperatorTokens, bus_audit, token_sha256
from quantumedge.shared.bus import Bus, MemoryBus
from quantumedge.shared.config import KafkaSettings
from quantumedge.shared.grpc_server import GrpcServer
from quantumedge.v1 import control_pb2, execution_pb2, risk_pb2, risk_pb2_grpc
from tests.support.risk_builders import book, report, signal, snapshot
from tests.support.signing import session_signing_settings

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _line(name: str, values: list[float], unit: str) -> dict[str, float]:
    p50, p99 = statistics.median(values), _pct(values, 0.99)
    print(f"  {name:<44} median {p50:9.3f} {unit}   p99 {p99:9.3f} {unit}   (n={len(values)})")
    return {f"{name}_p50_{unit}": p50, f"{name}_p99_{unit}": p99}


def _settings() -> RiskSettings:
    # Approve as much as possible, so the figures include sizing and protection, not just early rejections.
    s = RiskSettings()
    limits = s.limits.model_copy(
        update={
            "max_orders_per_window": 0,
            "min_confidence": 0.5,
            "min_edge": 0.0,
            "max_gross_exposure": 1e12,
            "max_symbol_notional": 1e12,
            "max_open_positions": 1_000,
        }
    )
    return s.model_copy(update={"limits": limits, "allow_pyramiding": True, "max_signal_age_ns": 0})


def bench_engine(n: int = 20_000) -> dict[str, float]:
    """RiskEngine.decide alone: the pure domain path the backtester runs too."""
    engine = RiskEngine(_settings())
    now = time.time_ns()
    engine.on_report(snapshot(now), now)
    for sym in SYMBOLS:
        engine.on_market(book(sym, 49_999.0, 50_001.0, now), now)
    sigs = [signal(SYMBOLS[i % 2], p_up=0.55 + (i % 40) / 100, t_ns=now) for i in range(n)]
    samples = []
    for sig in sigs:
        t0 = time.perf_counter_ns()
        decision = engine.decide(sig, now)
        samples.append((time.perf_counter_ns() - t0) / 1_000)
        if decision.approved:
            # Execution finishes each intent (here: the venue refuses it), so pending work stays realistic.
            done = report(
                sig.symbol, now, intent_id=decision.intent.intent_id, status=execution_pb2.ORDER_STATUS_REJECTED
            )
            engine.on_report(done, now)
    print(f"  approved {engine.counters.approved} of {n}")
    return _line("engine decide", samples, "us")


def bench_service_memory(n: int = 2_000) -> dict[str, float]:
    """Signal published -> decision consumed, through the running service on the in-process bus."""
    bus = MemoryBus()
    svc = RiskService(Settings(bus="memory", symbols=SYMBOLS, risk=_settings()), bus)
    svc.start()
    watcher = bus.consumer("bench-risk", [topics.DECISIONS])
    try:
        now = time.time_ns()
        bus.publish(topics.REPORTS, None, snapshot(now))
        for sym in SYMBOLS:
            bus.publish(topics.BOOK, sym, book(sym, 49_999.0, 50_001.0, now))
        samples = []
        for i in range(n):
            sig = signal(SYMBOLS[i % 2], p_up=0.7, t_ns=time.time_ns())
            t0 = time.perf_counter_ns()
            bus.publish(topics.SIGNALS, sig.symbol, sig)
            got = False
            while not got:
                got = any(
                    risk_pb2.RiskDecision.FromString(r.value).signal_id == sig.signal_id for r in watcher.poll(1.0)
                )
            samples.append((time.perf_counter_ns() - t0) / 1e6)
            if i % 500 == 0:  # keep market data fresh on the real clock
                for sym in SYMBOLS:
                    bus.publish(topics.BOOK, sym, book(sym, 49_999.0, 50_001.0, time.time_ns()))
        return _line("signal -> decision (service, memory bus)", samples, "ms")
    finally:
        watcher.close()
        svc.stop()
        bus.close()


def bench_halt_propagation(kafka_bootstrap: str, runs: int = 30) -> dict[str, float]:
    """Halt RPC -> HaltState consumed from control.v1 by another consumer group (what execution does)."""
    from kafka import KafkaAdminClient

    from quantumedge.shared.bus.kafka import KafkaBus

    kafka = KafkaSettings(
        bootstrap=kafka_bootstrap, allow_plaintext=True, topic_prefix=f"bench-risk-{uuid.uuid4().hex[:8]}."
    )
    bus: Bus = KafkaBus(kafka)
    bus.ensure_topics()
    # On Kafka risk needs signing keys (on the in-process bus it makes its own pair): the test session's.
    signing = session_signing_settings()
    svc = RiskService(Settings(bus="kafka", symbols=SYMBOLS, kafka=kafka, risk=_settings(), signing=signing), bus)
    # The real operator-auth interceptor in front, as in production, with a token made up for this run.
    token = secrets.token_urlsafe(24)
    operator = (("authorization", f"Bearer {token}"),)
    auth = OperatorAuthInterceptor(
        OperatorTokens({"bench": token_sha256(token)}),
        bus_audit(bus, "risk"),
        service="risk",
        protected=["/quantumedge.v1.RiskService/" + m for m in ("Halt", "Resume", "Reduce", "Activate")],
    )
    server = GrpcServer(0, svc.grpc_services(), interceptors=[auth], host="127.0.0.1")
    server.start()
    svc.start()
    server.set_serving(True)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    stub = risk_pb2_grpc.RiskServiceStub(channel)
    execution_side = bus.consumer("bench-execution", [topics.CONTROL])
    execution_side.wait_assigned()  # type: ignore[attr-defined]

    def consume(key: bytes, done: Callable[[control_pb2.ControlEvent], bool]) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for rec in execution_side.poll(0.5):
                if rec.key == key and done(control_pb2.ControlEvent.FromString(rec.value)):
                    return
        raise TimeoutError(f"{key.decode()} record never arrived on control.v1")

    def consume_halt(halted: bool) -> None:
        consume(b"halt", lambda e: e.halt.halted == halted)

    propagation, rpc = [], []
    try:
        for i in range(runs + 2):
            t0 = time.perf_counter_ns()
            stub.Halt(risk_pb2.HaltRequest(reason=f"bench {i}"), metadata=operator)
            t1 = time.perf_counter_ns()
            consume_halt(True)
            t2 = time.perf_counter_ns()
            if i >= 2:  # the first runs warm up connections and metadata
                rpc.append((t1 - t0) / 1e6)
                propagation.append((t2 - t0) / 1e6)
            stub.Resume(risk_pb2.ResumeRequest(reason="bench"), metadata=operator)
            consume_halt(False)
        out = _line("Halt RPC (acked by Kafka)", rpc, "ms")
        out |= _line("Halt RPC -> HaltState consumed on control.v1", propagation, "ms")
        verdict = "meets" if out["Halt RPC -> HaltState consumed on control.v1_p99_ms"] < 100 else "MISSES"
        print(f"  halt propagation {verdict} the < 100 ms target (p99)")
        out |= _reduce_runs(stub, operator, consume, runs)
        return out
    finally:
        channel.close()
        execution_side.close()
        server.stop(0)
        svc.stop()
        bus.close()
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="qe-bench-risk")
        try:
            admin.delete_topics([f"{kafka.topic_prefix}{spec.name}" for spec in topics.ALL], timeout_ms=30_000)
        except Exception as exc:  # leftover bench topics are harmless; say so rather than fail the figures
            print(f"  (could not delete bench topics: {exc})")
        finally:
            admin.close()


def _reduce_runs(stub: Any, operator: tuple, consume: Callable[..., None], runs: int) -> dict[str, float]:
    """Reduce RPC -> the signed state:account record consumed on control.v1, as execution consumes it."""
    reducing = risk_pb2.TRADING_STATE_REDUCING
    samples = []
    for i in range(runs + 2):
        t0 = time.perf_counter_ns()
        stub.Reduce(risk_pb2.ReduceRequest(reason=f"bench {i}"), metadata=operator)
        consume(b"state:account", lambda e: e.trading_state.state == reducing)
        if i >= 2:
            samples.append((time.perf_counter_ns() - t0) / 1e6)
        stub.Activate(risk_pb2.ActivateRequest(reason="bench"), metadata=operator)
        consume(b"state:account", lambda e: e.trading_state.state != reducing)
    out = _line("Reduce RPC -> state consumed on control.v1", samples, "ms")
    verdict = "meets" if out["Reduce RPC -> state consumed on control.v1_p99_ms"] < 100 else "MISSES"
    print(f"  reduce propagation {verdict} the halt's < 100 ms budget (p99)")
    return out


def _history(n: int, t0: int) -> list[execution_pb2.ExecutionReport]:
    """n reports as a busy week produces them: orders acknowledged, filled, positions opened and closed."""
    out = [snapshot(t0, equity=10_000.0)]
    for i in range(n - 1):
        sym, t = SYMBOLS[i % 2], t0 + (i + 1) * 6_000_000_000
        qty = 0.01 if (i // 2) % 2 == 0 else 0.0
        out.append(report(sym, t, position_qty=qty, intent_id=f"i{i}", realized=-1.0 if qty == 0 and i % 3 else 2.0))
    return out


def _timed_start(bus: Bus, risk: RiskSettings, now: int) -> tuple[float, RiskService]:
    svc = RiskService(Settings(bus="memory", symbols=SYMBOLS, risk=risk), bus, clock=lambda: now)
    t0 = time.perf_counter()
    svc.start()
    return time.perf_counter() - t0, svc


def bench_restart(n: int = 100_000, after: int = 1_000) -> dict[str, float]:
    """Start-up time of risk over n stored reports: full replay, against checkpoint + `after` newer reports."""
    bus = MemoryBus()
    now = time.time_ns()
    reports = _history(n + after, now - (n + after) * 6_000_000_000)
    for r in reports[:n]:
        bus.publish(topics.REPORTS, r.order.symbol or None, r)
    risk = _settings().model_copy(update={"checkpoint_every_reports": 10**9})
    _, first = _timed_start(bus, risk, now)
    first.stop()  # writes the checkpoint covering the n reports
    size = len(bus.read_all(topics.RISK_CHECKPOINT)[-1].value)
    for r in reports[n:]:
        bus.publish(topics.REPORTS, r.order.symbol or None, r)
    full_s, full = _timed_start(bus, risk.model_copy(update={"checkpoint_every_reports": 0}), now)
    full.stop()
    ckpt_s, svc = _timed_start(bus, risk, now)
    read = svc.rebuild_read
    same = svc.engine.ledger.equity == full.engine.ledger.equity
    svc.stop()
    bus.close()
    print(f"  restart over {n + after} reports: full replay {full_s:8.2f} s ({full.rebuild_read} read)")
    print(f"  restart from checkpoint + {after:<6}     {ckpt_s:8.2f} s ({read} read; checkpoint {size} bytes)")
    print(f"  same equity both ways: {same}")
    return {"restart_full_s": full_s, "restart_checkpoint_s": ckpt_s, "checkpoint_bytes": float(size)}


def bench_risk(kafka_bootstrap: str | None) -> dict[str, float]:
    # Halts and resumes are logged at WARNING for operators; here they are the workload, not news.
    logging.getLogger("quantumedge.risk").setLevel(logging.ERROR)
    figures = bench_engine()
    figures |= bench_service_memory()
    figures |= bench_restart()
    if kafka_bootstrap:
        figures |= bench_halt_propagation(kafka_bootstrap)
    else:
        print("  (no Kafka broker given: halt propagation not measured)")
    return figures


if __name__ == "__main__":
    bench_risk(sys.argv[1] if len(sys.argv) > 1 else None)

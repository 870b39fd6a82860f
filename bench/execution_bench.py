"""Execution figures on the paper venue, in-process.

- engine: one approved decision handed to the engine until its fill report is out (no bus), and orders/s;
- service: a decision published on the in-process bus until the fill report is read back from
  execution.reports.v1 by another consumer (the service's consumer loop, signature/replay/age gate, engine,
  paper venue and state publishing in between), one at a time for latency, then a burst for orders/s.
  Decisions are signed as risk signs them (the process's in-memory key pair, which a service on the
  in-process bus trusts) before the clock starts: signing is risk's cost (signing_bench), verifying is
  execution's and is in the figure. A decision the service dead-letters fails the bench with its reason.
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from quantumedge.execution.engine import EngineConfig, ExecutionEngine, ListEmitter
from quantumedge.execution.service import ExecutionService
from quantumedge.execution.settings import ExecutionSettings
from quantumedge.execution.venue import PaperVenue
from quantumedge.settings import Settings
from quantumedge.shared import topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.v1 import common_pb2, dlq_pb2, execution_pb2, market_pb2, risk_pb2
from tests.support.signing import signed

SYMBOL = "BTCUSDT"
MID = 50_000.0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _line(name: str, values: list[float], unit: str) -> tuple[float, float]:
    p50, p99 = statistics.median(values), _pct(values, 0.99)
    print(f"  {name:<44} median {p50:9.3f} {unit}   p99 {p99:9.3f} {unit}   (n={len(values)})")
    return p50, p99


def _depth(t_ns: int) -> market_pb2.MarketEvent:
    levels = range(10)
    return market_pb2.MarketEvent(
        symbol=SYMBOL,
        exchange_time_ns=t_ns,
        receive_time_ns=t_ns,
        depth=market_pb2.DepthUpdate(
            bids=[common_pb2.PriceLevel(price=MID - 0.5 - i, quantity=5.0) for i in levels],
            asks=[common_pb2.PriceLevel(price=MID + 0.5 + i, quantity=5.0) for i in levels],
        ),
    )


def _decision(n: int, run: str, decided_ns: int = 0) -> risk_pb2.RiskDecision:
    side = common_pb2.SIDE_BUY if n % 2 == 0 else common_pb2.SIDE_SELL
    return risk_pb2.RiskDecision(
        decision_id=f"bench-{run}-{n}",
        symbol=SYMBOL,
        approved=True,
        decided_time_ns=decided_ns,
        intent=risk_pb2.OrderIntent(
            intent_id=f"bench-{run}-{n}",
            symbol=SYMBOL,
            side=side,
            kind=risk_pb2.INTENT_KIND_ENTRY,
            order_type=risk_pb2.ORDER_TYPE_MARKET,
            quantity=0.01,
            reference_price=MID,
        ),
    )


def _engine_figures(n: int = 3000) -> dict[str, float]:
    venue = PaperVenue()
    emitter = ListEmitter()
    engine = ExecutionEngine(venue, emitter, EngineConfig(symbols=(SYMBOL,)))
    latencies: list[float] = []
    run = uuid.uuid4().hex[:6]
    t_start = time.perf_counter()
    for i in range(n):
        engine.on_market(_depth(1_000 + i))  # fresh liquidity each time, as a live feed would give
        t0 = time.perf_counter()
        engine.on_decision(_decision(i, run))
        latencies.append((time.perf_counter() - t0) * 1e6)
    elapsed = time.perf_counter() - t_start
    fills = sum(1 for r in emitter.reports if r.HasField("fill"))
    assert fills == n, f"expected {n} fills, got {fills}"
    p50, p99 = _line("engine: decision -> fill report", latencies, "us")
    rate = n / elapsed
    print(f"  {'engine: orders/s (incl. a book update each)':<44} {rate:9.0f}")
    return {
        "engine_decision_to_report_p50_us": p50,
        "engine_decision_to_report_p99_us": p99,
        "engine_orders_per_s": rate,
    }


def _service_figures(n_latency: int = 300, n_burst: int = 1000) -> dict[str, float]:
    bus = MemoryBus()
    settings = Settings(
        bus="memory",
        symbols=[SYMBOL],
        execution=ExecutionSettings(heartbeat_interval_s=0, mark_report_interval_ms=1_000_000),
    )
    service = ExecutionService(settings, bus)
    service.start()
    reader = bus.consumer("bench-reader", [topics.REPORTS, topics.DLQ], from_beginning=False)
    run = uuid.uuid4().hex[:6]
    try:
        bus.publish(topics.DEPTH, SYMBOL, _depth(time.time_ns()))

        def fills_seen(want: int, deadline_s: float = 60.0) -> int:
            seen = 0
            stop_at = time.monotonic() + deadline_s
            while seen < want:
                if time.monotonic() > stop_at:
                    raise TimeoutError(f"only {seen} of {want} fill reports")
                for record in reader.poll(0.5, 5000):
                    if record.topic == topics.DLQ:
                        dead = dlq_pb2.DeadLetter.FromString(record.value)
                        why = f"{dead.reason_code}: {dead.reason}"
                        raise RuntimeError(f"execution dead-lettered a bench decision: {why}")
                    report = execution_pb2.ExecutionReport.FromString(record.value)
                    if report.HasField("fill") and report.order.status == execution_pb2.ORDER_STATUS_FILLED:
                        seen += 1
            return seen

        latencies: list[float] = []
        for i in range(n_latency):
            bus.publish(topics.DEPTH, SYMBOL, _depth(time.time_ns()))
            decision = signed(_decision(i, run, time.time_ns()))
            t0 = time.perf_counter()
            bus.publish(topics.DECISIONS, SYMBOL, decision)
            fills_seen(1)
            latencies.append((time.perf_counter() - t0) * 1e3)
        p50, p99 = _line("service: decision in -> fill report out", latencies, "ms")

        burst = [signed(_decision(i, run, time.time_ns())) for i in range(n_latency, n_latency + n_burst)]
        t0 = time.perf_counter()
        for i, decision in enumerate(burst, start=n_latency):
            if i % 50 == 0:
                bus.publish(topics.DEPTH, SYMBOL, _depth(time.time_ns()))
            bus.publish(topics.DECISIONS, SYMBOL, decision)
        fills_seen(n_burst)
        rate = n_burst / (time.perf_counter() - t0)
        print(f"  {'service: orders/s (burst of decisions)':<44} {rate:9.0f}")
        return {"service_roundtrip_p50_ms": p50, "service_roundtrip_p99_ms": p99, "service_orders_per_s": rate}
    finally:
        reader.close()
        service.stop()
        bus.close()


def bench_execution() -> dict[str, float]:
    logging.getLogger("quantumedge").setLevel(logging.WARNING)
    figures = _engine_figures()
    figures.update(_service_figures())
    return figures


if __name__ == "__main__":
    print(bench_execution())

"""What the operator surfaces cost the pipeline: a notification enqueued while its endpoint hangs, one
Prometheus scrape of a busy risk service, and the metrics a decision records."""

from __future__ import annotations

import statistics
import threading
import time

from quantumedge.notify.events import Notification
from quantumedge.notify.notifier import Notifier
from quantumedge.notify.settings import NotifySettings


class _Hanging:
    name = "hanging"

    def __init__(self) -> None:
        self.release = threading.Event()

    def send(self, text: str) -> None:
        self.release.wait(30)


def _notify_enqueue(n: int = 50_000) -> float:
    sink = _Hanging()
    notifier = Notifier(NotifySettings(queue_max=n + 10), [sink]).start()
    t0 = time.perf_counter_ns()
    for i in range(n):
        notifier.notify(Notification("fill", f"fill {i}"))
    per_call = (time.perf_counter_ns() - t0) / n
    sink.release.set()
    notifier.stop(1)
    return per_call


def _scrape_and_decide() -> dict[str, float]:
    from prometheus_client import generate_latest

    from quantumedge.risk.domain.reasons import primary_code
    from quantumedge.risk.service import RiskService
    from quantumedge.settings import Settings
    from quantumedge.shared.bus import MemoryBus
    from quantumedge.shared.telemetry import init_telemetry, prometheus_registry
    from quantumedge.v1 import risk_pb2

    init_telemetry("bench", Settings().telemetry)
    service = RiskService(Settings(bus="memory"), MemoryBus())
    registry = prometheus_registry()
    assert registry is not None
    decision = risk_pb2.RiskDecision(symbol="BTCUSDT", reasons=["min_confidence: BUY 0.51 < 0.52", "min_edge: x"])
    from quantumedge.risk.metrics import decisions as _decisions
    from quantumedge.risk.metrics import tick_to_decision as _tick_to_decision

    n = 20_000
    t0 = time.perf_counter_ns()
    for _ in range(n):
        _decisions.add(1, {"approved": False, "reason": primary_code(decision), "symbol": decision.symbol})
        _tick_to_decision.record(1.5, {"symbol": decision.symbol})
    per_decision = (time.perf_counter_ns() - t0) / n
    scrapes = []
    for _ in range(50):
        t1 = time.perf_counter()
        generate_latest(registry)
        scrapes.append((time.perf_counter() - t1) * 1000)
    del service
    return {"per_decision_ns": per_decision, "scrape_ms": statistics.median(scrapes)}


def bench_operator() -> dict[str, float]:
    out = {"notify_enqueue_ns": _notify_enqueue(), **_scrape_and_decide()}
    print(f"  notify() while the endpoint hangs   {out['notify_enqueue_ns']:>10,.0f} ns per call (never blocks)")
    print(f"  metrics recorded per risk decision  {out['per_decision_ns']:>10,.0f} ns")
    print(f"  one scrape of the risk service      {out['scrape_ms']:>10.2f} ms (median of 50)")
    return out

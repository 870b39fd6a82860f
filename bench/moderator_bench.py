"""What the LLM risk moderator adds to one entry decision: nothing measurable when disabled, one local HTTP round
trip through the openai client when enabled (against the chat-completions peer on 127.0.0.1, answering at once;
a real model adds its own inference time, bounded by risk.moderator.budget_ms)."""

from __future__ import annotations

import statistics
import time

from quantumedge.risk import moderator as moderation
from quantumedge.risk.domain.engine import RiskEngine
from quantumedge.risk.moderator_client import ModeratorClient
from quantumedge.risk.moderator_settings import ModeratorSettings
from quantumedge.v1 import risk_pb2
from tests.peers.chat_completions import ChatCompletionsPeer
from tests.support.risk_builders import FakeClock, book, quiet_settings, signal, snapshot

N = 300


def _approved_entry(settings: ModeratorSettings) -> tuple[RiskEngine, object, risk_pb2.RiskDecision, int]:
    clock = FakeClock()
    engine = RiskEngine(quiet_settings(moderator=settings))
    engine.on_report(snapshot(clock.now), clock.now)
    engine.on_market(book("BTCUSDT", 49_999.0, 50_001.0, clock.now), clock.now)
    sig = signal("BTCUSDT", t_ns=clock.now)
    decision = engine.decide(sig, clock.now)
    assert decision.approved, list(decision.reasons)
    return engine, sig, decision, clock.now


def _time_us(fn) -> tuple[float, float]:
    samples = []
    for _ in range(N):
        t0 = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - t0) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


def bench_moderator() -> None:
    engine, sig, decision, now = _approved_entry(ModeratorSettings())
    med, p99 = _time_us(lambda: moderation.prepare(engine, sig, risk_pb2.RiskDecision(), [], now))
    print(f"  disabled (the hook's check per entry):        median {med:.1f} us, p99 {p99:.1f} us")
    peer = ChatCompletionsPeer("bench-key").start()
    try:
        settings = ModeratorSettings(enabled=True, base_url=peer.base_url, model="bench", budget_ms=800)
        engine, sig, decision, now = _approved_entry(settings)
        client = ModeratorClient(settings, "bench-key")

        def moderated() -> None:
            d = risk_pb2.RiskDecision()
            d.CopyFrom(decision)
            context = moderation.prepare(engine, sig, d, [], now)
            moderation.settle(engine, d, client.review(context))

        moderated()  # connection set up once, as in service
        med, p99 = _time_us(moderated)
        print(f"  enabled, local chat-completions peer (allow): median {med / 1000:.2f} ms, p99 {p99 / 1000:.2f} ms")
        print(f"  requests answered by the peer: {len(peer.requests)}; budget {settings.budget_ms:g} ms")
        client.close()
    finally:
        peer.stop()

"""What signing and verifying costs per record: risk signs every decision, execution checks every one."""

from __future__ import annotations

import statistics
import time

from quantumedge.shared import topics
from quantumedge.shared.admission import DecisionGate
from quantumedge.shared.signing import ephemeral_keyring
from quantumedge.v1 import common_pb2, risk_pb2

N = 5_000


def _decision(i: int, now_ns: int) -> risk_pb2.RiskDecision:
    return risk_pb2.RiskDecision(
        decision_id=f"bench-{i}",
        symbol="BTCUSDT",
        approved=True,
        reasons=["approved: entry BUY 0.002 BTCUSDT notional 100.00 sized by risk_fraction"],
        decided_time_ns=now_ns,
        intent=risk_pb2.OrderIntent(
            intent_id=f"intent-{i}", symbol="BTCUSDT", side=common_pb2.SIDE_BUY, quantity=0.002, reference_price=50_000
        ),
    )


def _per_call_us(fn, items) -> tuple[float, float]:
    samples = []
    for item in items:
        t0 = time.perf_counter_ns()
        fn(item)
        samples.append((time.perf_counter_ns() - t0) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


def bench_signing() -> None:
    keyring = ephemeral_keyring("bench")
    now = time.time_ns()
    decisions = [_decision(i, now) for i in range(N)]
    sign_med, sign_p99 = _per_call_us(lambda d: keyring.sign(d, topics.DECISIONS, d.symbol), decisions)
    verify_med, verify_p99 = _per_call_us(lambda d: keyring.verify(d, topics.DECISIONS, d.symbol), decisions)
    gate = DecisionGate(keyring, max_age_ns=30 * 10**9, max_ahead_ns=5 * 10**9)
    positions = iter(range(N))
    gate_med, gate_p99 = _per_call_us(lambda d: gate.check(d, d.symbol, (0, next(positions)), now), decisions)
    print(f"  sign (risk, per decision):          median {sign_med:.0f} us, p99 {sign_p99:.0f} us")
    print(f"  verify (execution, per decision):   median {verify_med:.0f} us, p99 {verify_p99:.0f} us")
    print(f"  full gate (verify + replay + age):  median {gate_med:.0f} us, p99 {gate_p99:.0f} us")
    print(f"  => at most ~{1e6 / gate_med:,.0f} decisions/s through one execution consumer's checks")

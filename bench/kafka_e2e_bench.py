"""Tick -> signal -> decision -> fill through a real Kafka broker across the four `quantumedge serve` processes.

For each fixed tick rate, a fresh set of processes on fresh topics: execution (paper), risk and inference first,
then ingest on the synthetic market paced to the rate. After a bounded feed, every message is read back and
the chain is followed by ids: fill -> order's intent -> decision -> intent's signal -> the first tick of the
symbol at or after the signal's row boundary (the tick that let the row close). Times are the messages' own:
the tick's Kafka timestamp (producer create time, millisecond resolution), the signal's created_time_ns, the
decision's decided_time_ns, the fill report's time_ns. Lag is sampled from the brokers' group offsets.

It fails (raises) when it cannot measure: a process died, no tick, signal, decision or fill was seen, or a
figure would be computed from no samples. It never prints a zero in place of a figure.
"""

from __future__ import annotations

import bisect
import os
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen

from kafka import KafkaAdminClient, KafkaConsumer

from bench import kafka_control
from quantumedge.ingest.synthetic import SyntheticMarket
from quantumedge.settings import Settings
from quantumedge.shared import topics
from quantumedge.shared.bus.base import Record
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.config import KafkaSettings
from quantumedge.v1 import execution_pb2, market_pb2, risk_pb2, signal_pb2
from tests.support.procs import free_port, kafka_env, spawn, stop, wait_serving

DOWNSTREAM = ("execution", "risk", "inference")
GROUPS = ("inference", "risk", "execution")
# Rates (ticks/s) and how long each is fed; QE_BENCH_E2E_RATES / QE_BENCH_E2E_SECONDS override.
RATES = tuple(int(r) for r in os.environ.get("QE_BENCH_E2E_RATES", "100,1000").split(",") if r.strip())
FEED_S = float(os.environ.get("QE_BENCH_E2E_SECONDS", "40"))
# After the feed stops, wait this long at most for the consumers to drain (the drain time is a figure too).
DRAIN_S = 45.0


class BenchError(RuntimeError):
    """The bench could not measure what it promises; the message says what was missing."""


@dataclass
class Run:
    rate: int
    prefix: str
    started_ns: int = 0
    stopped_ns: int = 0
    lag: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    drained_s: float | None = None


def events_per_step() -> float:
    """Events the synthetic market emits per simulated second for the configured symbols (its pace unit)."""
    steps = 60
    return sum(1 for _ in SyntheticMarket(list(Settings().symbols), seed=7).events(steps)) / steps


def _env(bootstrap: str, prefix: str, ports: Mapping[str, int], work: Path, speed: float) -> dict[str, str]:
    return {
        **kafka_env(bootstrap, prefix, ports),
        "QE_INGEST__SOURCE": "synthetic",
        "QE_INGEST__SYNTHETIC_STEPS": "0",
        "QE_INGEST__SYNTHETIC_SPEED": f"{speed:.4f}",
        "QE_DATA_DIR": str(work / "var"),
        "QE_LOG_LEVEL": "WARNING",
        # The bench measures the path, not the strategy: risk's entry threshold and the limits that would stop
        # trading after the first few entries are opened, so approved orders keep flowing to the paper venue.
        **{f"QE_RISK__LIMITS__{name}": value for name, value in _OPEN_LIMITS.items()},
    }


_OPEN_LIMITS = {
    "MIN_EXPECTED_RETURN_BPS": "0",
    "COOLDOWN_AFTER_LOSS_NS": "0",
    "COOLDOWN_AFTER_EXIT_NS": "0",
    "MAX_ORDERS_PER_WINDOW": "1000000",
    "MAX_SYMBOL_NOTIONAL": "100000000",
    "MAX_GROSS_EXPOSURE": "100000000",
    "MAX_ORDER_NOTIONAL": "100",
    "MAX_LOSS_STREAK": "1000000",
}


def _alive(procs: Mapping[str, Popen], logs: Path) -> None:
    for name, proc in procs.items():
        if proc.poll() is not None:
            tail = (logs / f"{name}.log").read_text(errors="replace")[-2000:]
            raise BenchError(f"{name} exited with {proc.returncode} during the run:\n{tail}")


def _group_lag(admin: KafkaAdminClient, ends: KafkaConsumer, prefix: str) -> dict[str, int]:
    """Records behind the end, summed over every partition each service's group holds."""
    out = {}
    for group in GROUPS:
        name = f"{prefix}{group}"
        offsets = admin.list_group_offsets({name: None}).get(name, {})
        if not offsets:
            out[group] = 0
            continue
        for topic in {tp.topic for tp in offsets}:  # end_offsets needs the topic's metadata first
            ends.partitions_for_topic(topic)
        end = {(tp.topic, tp.partition): n for tp, n in ends.end_offsets(list(offsets)).items()}
        out[group] = sum(
            max(0, end.get((tp.topic, tp.partition), meta.offset) - meta.offset)
            for tp, meta in offsets.items()
            if meta.offset >= 0
        )
    return out


def _feed(run: Run, bootstrap: str, procs: dict[str, Popen], env: dict[str, str], logs: Path) -> None:
    """Start ingest, feed for FEED_S while sampling lag, stop it, then wait (bounded) for the drain."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="qe-bench-e2e")
    ends = KafkaConsumer(bootstrap_servers=bootstrap, client_id="qe-bench-e2e-ends")
    try:
        run.started_ns = time.time_ns()
        procs["ingest"] = spawn(["serve", "ingest"], env, logs / "ingest.log")
        deadline = time.monotonic() + FEED_S
        while time.monotonic() < deadline:
            time.sleep(2.0)
            _alive(procs, logs)
            for group, lag in _group_lag(admin, ends, run.prefix).items():
                run.lag[group].append(lag)
        code = stop(procs.pop("ingest"))
        run.stopped_ns = time.time_ns()
        if code not in (0, -15):
            raise BenchError(f"ingest stopped with exit code {code}")
        drain_deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < drain_deadline:
            _alive(procs, logs)
            if not any(_group_lag(admin, ends, run.prefix).values()):
                run.drained_s = (time.time_ns() - run.stopped_ns) / 1e9
                break
            time.sleep(0.5)
    finally:
        ends.close()
        admin.close()


def _start_downstream(env: dict[str, str], ports: Mapping[str, int], logs: Path) -> dict[str, Popen]:
    procs = {name: spawn(["serve", name], env, logs / f"{name}.log") for name in DOWNSTREAM}
    try:
        for name in DOWNSTREAM:
            wait_serving(ports[name], timeout_s=180, proc=procs[name])
    except AssertionError as exc:
        for proc in procs.values():
            stop(proc)
        tails = {n: (logs / f"{n}.log").read_text(errors="replace")[-1500:] for n in DOWNSTREAM}
        dead = "\n".join(f"--- {n}\n{tails[n]}" for n, p in procs.items() if p.returncode not in (0, -15))
        raise BenchError(f"the services did not start: {exc}\n{dead}") from None
    return procs


def _one_rate(bootstrap: str, rate: int, per_step: float, work: Path) -> dict[str, object]:
    prefix = f"bench-e2e-{rate}-{uuid.uuid4().hex[:6]}."
    kafka = KafkaSettings(bootstrap=bootstrap, allow_plaintext=True, topic_prefix=prefix)
    bus = KafkaBus(kafka, symbols=Settings().symbols)
    bus.ensure_topics()
    logs = work / f"rate-{rate}"
    logs.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in (*DOWNSTREAM, "ingest")}
    env = _env(bootstrap, prefix, ports, logs, rate / per_step)
    run = Run(rate, prefix)
    procs = _start_downstream(env, ports, logs)
    try:
        _feed(run, bootstrap, procs, env, logs)
        return _figures(run, {t: bus.read_all(t, timeout_s=120) for t in (*topics.MARKET, *_CHAIN)})
    finally:
        for proc in procs.values():
            stop(proc)
        bus.close()


_CHAIN = (topics.SIGNALS, topics.DECISIONS, topics.REPORTS)


def _ticks(market: list[Record]) -> dict[str, tuple[list[int], list[int]]]:
    """Per symbol: exchange times (sorted) and each tick's Kafka timestamp in ns."""
    by_symbol: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for r in market:
        event = market_pb2.MarketEvent.FromString(r.value)
        by_symbol[event.symbol].append((event.exchange_time_ns, r.timestamp_ms * 1_000_000))
    out = {}
    for symbol, pairs in by_symbol.items():
        pairs.sort()
        out[symbol] = ([p[0] for p in pairs], [p[1] for p in pairs])
    return out


def _chains(records: Mapping[str, list[Record]]) -> dict[str, list[float]]:
    """The four latencies (ms) of every fill whose chain can be followed back to its tick."""
    ticks = _ticks([r for t in topics.MARKET for r in records[t]])
    signals = {s.signal_id: s for s in (signal_pb2.Signal.FromString(r.value) for r in records[topics.SIGNALS])}
    every = [risk_pb2.RiskDecision.FromString(r.value) for r in records[topics.DECISIONS]]
    decisions: dict[str, risk_pb2.RiskDecision] = {}
    for d in every:  # a refusal may carry no intent id: only an intent's first decision can lead to a fill
        if d.intent.intent_id:
            decisions.setdefault(d.intent.intent_id, d)
    out: dict[str, list[float]] = {k: [] for k in ("tick_signal", "signal_decision", "decision_fill", "tick_fill")}
    out["tick_signal"] = [ms for s in signals.values() if (ms := _tick_to_signal(s, ticks)) is not None]
    for d in every:  # every decision, approved or refused: risk's answer to a signal either way
        signal = signals.get(d.signal_id or d.intent.signal_id)
        if signal is not None:
            out["signal_decision"].append((d.decided_time_ns - signal.created_time_ns) / 1e6)
    for r in records[topics.REPORTS]:
        report = execution_pb2.ExecutionReport.FromString(r.value)
        decision = decisions.get(report.order.intent_id) if report.HasField("fill") else None
        if decision is None:
            continue
        out["decision_fill"].append((report.time_ns - decision.decided_time_ns) / 1e6)
        signal = signals.get(decision.signal_id or decision.intent.signal_id)
        tick = _tick_ns(signal, ticks) if signal is not None else None
        if tick is not None:
            out["tick_fill"].append((report.time_ns - tick) / 1e6)
    return out


def _tick_ns(signal: signal_pb2.Signal, ticks: Mapping[str, tuple[list[int], list[int]]]) -> int | None:
    """The Kafka time of the first tick of the signal's symbol at or after its row boundary."""
    times, stamps = ticks.get(signal.symbol, ([], []))
    i = bisect.bisect_left(times, signal.event_time_ns)
    return stamps[i] if i < len(times) else None


def _tick_to_signal(signal: signal_pb2.Signal, ticks: Mapping[str, tuple[list[int], list[int]]]) -> float | None:
    tick = _tick_ns(signal, ticks)
    return None if tick is None else (signal.created_time_ns - tick) / 1e6


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _figures(run: Run, records: Mapping[str, list[Record]]) -> dict[str, object]:
    market = [r for t in topics.MARKET for r in records[t]]
    fed = [r for r in market if run.started_ns <= r.timestamp_ms * 1_000_000 <= run.stopped_ns]
    for what, found in (("tick", fed), ("signal", records[topics.SIGNALS]), ("decision", records[topics.DECISIONS])):
        if not found:
            raise BenchError(f"{run.rate}/s: no {what} on the bus: nothing to measure")
    seconds = (run.stopped_ns - run.started_ns) / 1e9
    chains = _chains(records)
    if not chains["decision_fill"]:
        decisions = [risk_pb2.RiskDecision.FromString(r.value) for r in records[topics.DECISIONS]]
        reasons = Counter(reason for d in decisions if not d.approved for reason in d.reasons).most_common(3)
        approved = sum(d.approved for d in decisions)
        raise BenchError(
            f"{run.rate}/s: no paper fill in {seconds:.0f} s ({len(decisions)} decisions, {approved} approved; "
            f"refusals mostly {reasons}), so no tick -> fill figure"
        )
    per_partition = Counter(r.partition for r in fed)
    per_topic_partition = Counter((r.topic.split(".")[1], r.partition) for r in fed)
    print(
        f"  {run.rate}/s asked, {len(fed) / seconds:,.0f}/s achieved over {seconds:.0f} s; "
        f"ingest events/s per partition: "
        + ", ".join(f"p{p} {n / seconds:,.0f}" for p, n in sorted(per_partition.items()))
        + " ("
        + ", ".join(f"{t}/p{p} {n / seconds:,.0f}" for (t, p), n in sorted(per_topic_partition.items()))
        + ")"
    )
    out: dict[str, object] = {"rate": run.rate, "achieved_per_s": len(fed) / seconds}
    for name, values in chains.items():
        if not values:
            print(f"  {name:<16} not measured (no complete chain)")
            continue
        p50, p99, p999 = (_pct(values, q) for q in (0.5, 0.99, 0.999))
        out[name] = {"n": len(values), "p50_ms": p50, "p99_ms": p99, "p999_ms": p999}
        # A tail percentile from fewer samples than it needs is the maximum, and is said to be.
        tail99 = f"{p99:9.1f} ms" if len(values) >= 100 else f"{'(max)':>9} {max(values):.1f} ms"
        tail999 = f"{p999:9.1f} ms" if len(values) >= 1000 else "n/a (n<1000)"
        print(f"  {name:<16} n={len(values):>6}  p50 {p50:9.1f} ms  p99 {tail99}  p99.9 {tail999}")
    for group in GROUPS:
        samples = run.lag.get(group, [])
        if samples:
            third = max(1, len(samples) // 3)
            growth = sum(samples[-third:]) / third - sum(samples[:third]) / third
            print(
                f"  lag {group:<10} first {samples[0]:>6}  max {max(samples):>6}  last {samples[-1]:>6}"
                f"  growth {growth:+.0f}"
            )
    drained = f"{run.drained_s:.1f} s" if run.drained_s is not None else f"not within {DRAIN_S:.0f} s"
    print(f"  consumers drained after the feed stopped: {drained}")
    out["drained_s"] = run.drained_s
    return out


def bench_kafka_e2e(kafka_bootstrap: str | None) -> list[dict[str, object]]:
    if not kafka_bootstrap:
        raise BenchError("no Kafka broker: tick -> fill through Kafka cannot be measured")
    per_step = events_per_step()
    load = os.getloadavg()
    print(
        f"  machine load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores; {FEED_S:.0f} s per rate"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="qe-bench-e2e-") as work:
        # The control path first: a rate that cannot measure fails the bench, and these figures are out by then.
        print(f"  control path and Predict ({kafka_control.ROUNDS} rounds each, no market feed):")
        results.append(kafka_control.bench_control(kafka_bootstrap, Path(work)))
        for rate in RATES:
            results.append(_one_rate(kafka_bootstrap, rate, per_step, Path(work)))
    return results

"""Run every benchmark and print its figures.

Kafka figures use QE_BENCH_KAFKA_BOOTSTRAP when set; otherwise a local KRaft broker is started
(the same harness the integration tests use) and stopped afterwards.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (module, function, needs kafka)
BENCHES = [
    ("bench.bus_bench", "bench_bus", True),
    ("bench.kafka_security_bench", "bench_kafka_security", False),
    ("bench.ingest_bench", "bench_ingest", True),
    ("bench.inference_bench", "bench_inference", False),
    ("bench.risk_bench", "bench_risk", True),
    ("bench.execution_bench", "bench_execution", False),
    ("bench.backtest_bench", "bench_backtest", False),
    ("bench.operator_bench", "bench_operator", False),
    ("bench.signing_bench", "bench_signing", False),
    ("bench.moderator_bench", "bench_moderator", False),
    ("bench.outage_bench", "bench_outage", False),
    ("bench.kafka_e2e_bench", "bench_kafka_e2e", True),
]


@contextlib.contextmanager
def kafka() -> Iterator[str | None]:
    given = os.environ.get("QE_BENCH_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    from tests.harness import LocalKafka

    with LocalKafka() as broker:
        yield broker.bootstrap


def main(only: list[str]) -> int:
    """Every bench, or those whose module name contains one of `only` (`make bench BENCH=outage`)."""
    failures = 0
    chosen = [b for b in BENCHES if not only or any(word in b[0] for word in only)]
    kafka_or_none = kafka() if any(needs for _, _, needs in chosen) else contextlib.nullcontext(None)
    with kafka_or_none as bootstrap:
        print(f"kafka: {bootstrap}")
        for module, func, needs_kafka in chosen:
            print(f"\n== {module.split('.')[-1]}")
            t0 = time.perf_counter()
            try:
                fn = getattr(importlib.import_module(module), func)
                fn(bootstrap) if needs_kafka else fn()
            except Exception as exc:  # one broken bench must not hide the others' figures
                failures += 1
                print(f"  FAILED: {type(exc).__name__}: {exc}")
            print(f"  ({time.perf_counter() - t0:.1f} s)")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of the bench process: {peak_mb:.0f} MB")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

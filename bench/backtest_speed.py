"""Issue 14's backtest figures, in CPU seconds (time.process_time) so the machine's load cancels out:
loading a recording (Arrow rows vs protobuf), the backtest's events per CPU-second on rows with the full
ML path (the promoted models), and the run's peak traced memory at N and 4N events.

Each line states its target and whether it is met. A figure that cannot be measured (nothing loaded,
no signal from the models, no CPU time) raises: the bench fails, it never prints a zero as a figure."""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pyarrow.compute as pc
import pyarrow.parquet as pq

from quantumedge.backtest.simulation import Backtest, ModelSet
from quantumedge.ingest.replay import ReplaySource
from quantumedge.ingest.synthetic import SyntheticMarket
from quantumedge.settings import Settings
from quantumedge.shared import market_files

LOAD_TARGET = 1_000_000  # events/s loaded (issue 14)
BACKTEST_TARGET = 100_000  # events per CPU-second, full ML path, one core (issue 14)
FLAT_RATIO = 1.25  # peak at 4N within 25% of the peak at N reads as flat
MEMORY_STEPS = 600  # N: 10 minutes of one-second steps for each symbol; 4N is 40 minutes

T = TypeVar("T")


def write_recording(root: Path, symbols: list[str], steps: int, seed: int = 11) -> int:
    """One Parquet file per symbol under root in the recorder's layout; the number of events written."""
    table = market_files.events_to_table(SyntheticMarket(symbols, seed=seed).events(steps))
    for symbol in symbols:
        part = table.filter(pc.equal(table["symbol"], symbol))
        folder = root / f"symbol={symbol}" / "date=2024-01-01" / "hour=00"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(part, folder / "part-00000.parquet", compression="zstd")
    return table.num_rows


def cpu(fn: Callable[[], T]) -> tuple[T, float]:
    """fn's result and the CPU seconds it took; no CPU time measured is a failure, not an infinite rate."""
    t0 = time.process_time()
    out = fn()
    took = time.process_time() - t0
    if took <= 0:
        raise RuntimeError("no CPU time measured (process_time did not advance)")
    return out, took


def _verdict(value: float, target: float) -> str:
    return f"target {target:,.0f}: {'MET' if value >= target else 'NOT met'} ({value / target:.2f}x)"


def bench_loading(source: ReplaySource, written: int) -> None:
    """Loading every event of a recording: the Arrow row path the backtest reads vs protobuf events."""
    for label, load in (
        ("Arrow rows (ReplaySource.rows)", source.rows),
        ("protobuf (ReplaySource.events)", source.events),
    ):
        loaded, took = cpu(lambda load=load: sum(1 for _ in load()))
        if loaded != written:
            raise RuntimeError(f"loading {label} read {loaded:,} events of the {written:,} written")
        rate = loaded / took
        print(
            f"  loading {label}: {loaded:,} events in {took:.2f} CPU-s = {rate:,.0f} events/CPU-s; "
            f"{_verdict(rate, LOAD_TARGET)}"
        )


def bench_rows_backtest(settings: Settings, models: ModelSet, source: ReplaySource) -> None:
    """The backtest on recorded rows streamed from Parquet, with the promoted models deciding."""
    result, took = cpu(lambda: Backtest(settings, models).run(source.rows()))
    if not result.events or not result.signals:
        raise RuntimeError(f"backtest on rows ran {result.events} events, {result.signals} signals: nothing to time")
    rate = result.events / took
    print(
        f"  backtest on rows, full ML path: {result.events:,} events ({result.signals:,} signals) in "
        f"{took:.2f} CPU-s = {rate:,.0f} events/CPU-s; {_verdict(rate, BACKTEST_TARGET)}"
    )


def traced_peak(settings: Settings, models: ModelSet, source: ReplaySource) -> tuple[int, int]:
    """(events run, peak bytes traced) of a backtest over rows streamed from the recording.

    tracemalloc sees the Python heap: rows, the engines' state, records. Arrow's buffers (the hour's
    table being read) come from Arrow's own pool and are bounded by the recorder's hour partitions."""
    tracemalloc.start()
    try:
        result = Backtest(settings, models).run(source.rows())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if not result.events or not peak:
        raise RuntimeError(f"memory run measured {result.events} events, {peak} bytes")
    return result.events, peak


def bench_memory(settings: Settings, models: ModelSet, sources: list[ReplaySource]) -> None:
    """Peak traced memory at N and 4N events: flat means the run keeps nothing per event."""
    (n1, p1), (n4, p4) = (traced_peak(settings, models, s) for s in sources)
    ratio = p4 / p1
    flat = "FLAT" if ratio <= FLAT_RATIO else "NOT flat"
    print(
        f"  peak traced memory of the run: {n1:,} events {p1 / 1e6:.1f} MB, {n4:,} events {p4 / 1e6:.1f} MB "
        f"(x{ratio:.2f} for x{n4 / n1:.1f} events); target flat (within x{FLAT_RATIO}): {flat}"
    )


def bench_speed(settings: Settings, models: ModelSet) -> None:
    """Loading, rows backtest and memory figures on synthetic recordings of N and 4N steps."""
    symbols = list(settings.symbols)
    with tempfile.TemporaryDirectory() as tmp:
        roots = [Path(tmp) / "n", Path(tmp) / "4n"]
        steps = (MEMORY_STEPS, 4 * MEMORY_STEPS)
        written = [write_recording(root, symbols, n) for root, n in zip(roots, steps, strict=True)]
        sources = [ReplaySource(root, settings.symbols) for root in roots]
        bench_loading(sources[1], written[1])
        bench_rows_backtest(settings, models, sources[1])
        bench_memory(settings, models, sources)

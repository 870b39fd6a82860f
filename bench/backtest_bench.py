"""Backtest throughput: synthetic market events per second through features, models, risk and paper
execution on one core (the same engines the services run), and the memory the run's records take."""

from __future__ import annotations

import logging
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console

from quantumedge.backtest.cli import load_backtest_models
from quantumedge.backtest.metrics import FigureBuilder
from quantumedge.backtest.simulation import Backtest
from quantumedge.backtest.trades import TradeBook, expectancy
from quantumedge.ingest.synthetic import SyntheticMarket
from quantumedge.shared.config import load_settings

STEPS = 3_600  # one-second steps: an hour of market for two symbols
HELD_OUT_SEED, HELD_OUT_STEPS = 4242, 12 * 3600  # a seed the shipped models never saw (trained on 1001)


def bench_backtest() -> None:
    logging.getLogger("quantumedge").setLevel(logging.ERROR)  # a limit halting the run is a figure, not news
    settings = load_settings()
    models = load_backtest_models(settings, allow_missing=False, console=Console(stderr=True))
    events = list(SyntheticMarket(list(settings.symbols), seed=11).events(STEPS))
    builder = FigureBuilder(list(settings.symbols))
    t0 = time.perf_counter()
    result = Backtest(settings, models, [builder]).run(events)
    elapsed = time.perf_counter() - t0
    # Memory in a second run: tracing allocations slows the loop several times over.
    tracemalloc.start()
    Backtest(settings, models, [FigureBuilder(list(settings.symbols))]).run(events)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    figs = builder.figures(result)
    print(
        f"  backtest: {figs.events:,} events in {elapsed:.2f} s = {figs.events / elapsed:,.0f} events/s "
        f"({figs.signals:,} signals, {figs.fills} fills, PnL {figs.pnl:+.2f}); "
        f"peak memory of the run {peak / 1e6:.1f} MB"
    )
    bench_expectancy(settings, models)


def bench_expectancy(settings, models) -> None:
    """The default models' net expectancy per trade on a held-out synthetic seed (12 h of market)."""
    book = TradeBook()
    t0 = time.perf_counter()
    Backtest(settings, models, [book]).run(
        SyntheticMarket(list(settings.symbols), seed=HELD_OUT_SEED).events(HELD_OUT_STEPS)
    )
    e = expectancy(book.trades)
    print(
        f"  default models on held-out seed {HELD_OUT_SEED} ({HELD_OUT_STEPS / 3600:.0f} h, "
        f"{len(settings.symbols)} symbols):"
        f" {e['trades']} trades, net expectancy {e['expectancy_bps']:+.2f} bps per trade after fees,"
        f" win rate {e['win_rate']:.0%}, net PnL {e['net_pnl']:+.2f} ({time.perf_counter() - t0:.0f} s)"
    )


if __name__ == "__main__":
    bench_backtest()

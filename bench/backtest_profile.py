"""Where a recorded backtest spends its CPU: a synthetic recording written as Parquet, then loaded
(ReplaySource.events, as `quantumedge backtest --data` reads it) and run through the backtest, timed in
CPU seconds (time.process_time) so the machine's load cancels out.

python bench/backtest_profile.py [--steps N] [--profile]   # --profile prints the top cProfile entries
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import pstats
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console

from bench.backtest_speed import cpu, write_recording
from quantumedge.backtest.cli import load_backtest_models
from quantumedge.backtest.simulation import Backtest
from quantumedge.ingest.replay import ReplaySource


def main(argv: list[str] | None = None) -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--steps", type=int, default=1_800)
    args.add_argument("--profile", action="store_true")
    args.add_argument("--events", action="store_true", help="run the backtest on protobuf events, not rows")
    opts = args.parse_args(argv)
    logging.getLogger("quantumedge").setLevel(logging.ERROR)
    from bench.backtest_bench import promoted_settings

    settings = promoted_settings()
    models = load_backtest_models(settings, allow_missing=False, console=Console(stderr=True))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        n = write_recording(root, list(settings.symbols), opts.steps)
        source = ReplaySource(root, settings.symbols)
        for label, load in (("protobuf events", source.events), ("columnar rows", source.rows)):
            loaded, load_s = cpu(lambda load=load: sum(1 for _ in load()))
            print(f"  loading {label}: {loaded:,} in {load_s:.2f} CPU-s = {loaded / load_s:,.0f} events/CPU-s")
        events = list(source.events() if opts.events else source.rows())
        prof = cProfile.Profile() if opts.profile else None
        if prof:
            prof.enable()
        result, run_s = cpu(lambda: Backtest(settings, models).run(events))
        if prof:
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        print(
            f"  backtest (loaded events): {result.events:,} events in {run_s:.2f} CPU-s = "
            f"{result.events / run_s:,.0f} events/CPU-s ({result.signals:,} signals; {n:,} written)"
        )


if __name__ == "__main__":
    main()

"""`quantumedge backtest --sweep FILE`: the sweep's arguments, its run and its printed, merged report.

quantumedge backtest --sweep sweep.yaml --data var/rec/day1 var/rec/day2 --jobs 2 --out var/sweeps/s1
quantumedge backtest --sweep sweep.yaml --synthetic-steps 3600 --seed 11 12      # synthetic markets
quantumedge backtest --sweep sweep.yaml --data /rec --sweep-index 3 --out /results   # one pod of a Job
quantumedge backtest --merge /results --out /results/merged                        # the Job's report
quantumedge backtest --merge /results --expect-parts 5 --merge-wait 3600 --out /results/merged  # merge Job
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from quantumedge.backtest.runs import BacktestError, load_backtest_models, run_settings, run_sweep
from quantumedge.backtest.sweep import (
    Job,
    RunConfig,
    Source,
    SweepError,
    apply_overrides,
    by_config,
    jobs_for,
    load_sweep,
    read_parts,
    wait_for_parts,
    write_part,
    write_report,
)
from quantumedge.shared.config import ConfigError
from quantumedge.shared.logs import setup_logging


def add_sweep_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sweeps (many configurations x several recordings, in parallel)")
    g.add_argument("--sweep", type=Path, metavar="FILE", help="YAML/JSON: a 'grid' of dotted settings and/or 'configs'")
    g.add_argument("--jobs", type=int, metavar="N", help="worker processes (default: the cores this process may use)")
    g.add_argument(
        "--sweep-index", type=int, metavar="K", help="run configuration K only and write a part file to --out"
    )
    g.add_argument("--merge", type=Path, nargs="+", metavar="DIR", help="merge part files under DIR(s) into one report")
    g.add_argument(
        "--expect-parts", type=int, metavar="N", help="with --merge: the sweep's configurations; fewer or others fail"
    )
    g.add_argument(
        "--merge-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="with --merge --expect-parts: wait this long for the parts (a merge Job started with the sweep's pods)",
    )


def is_sweep(args: argparse.Namespace) -> bool:
    return args.sweep is not None or args.merge is not None


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def sweep_main(args: argparse.Namespace, out: Console, err: Console) -> int:
    setup_logging(args.log_level, service="backtest")
    began, cpu0 = time.monotonic(), time.process_time()
    try:
        if args.merge is not None:
            _await_parts(args)
            rows, info = read_parts(args.merge), {"merged": [str(p) for p in args.merge]}
        else:
            rows, info = _run(args, out, err)
    except (SweepError, BacktestError, ConfigError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        return 2
    if args.sweep_index is not None:
        out.print(f"wrote {write_part(args.out, args.sweep_index, rows)}")
        return 0
    info["wall_s"] = round(time.monotonic() - began, 1)
    info["worker_cpu_s"] = round(sum(r["cpu_s"] for r in rows), 1)
    info["parent_cpu_s"] = round(time.process_time() - cpu0, 1)
    print_sweep(rows, info, out)
    if args.out:
        out.print(f"wrote {', '.join(str(p) for p in write_report(args.out, rows, info))}")
    return 0


def _await_parts(args: argparse.Namespace) -> None:
    if args.expect_parts is None:
        if args.merge_wait:
            raise SweepError("--merge-wait needs --expect-parts N (how many part files to wait for)")
        return
    if args.expect_parts <= 0 or args.merge_wait < 0:
        raise SweepError("--expect-parts must be > 0 and --merge-wait >= 0")
    wait_for_parts(args.merge, args.expect_parts, args.merge_wait)


def _run(args: argparse.Namespace, out: Console, err: Console) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    configs = load_sweep(args.sweep)
    if args.sweep_index is not None:
        if args.out is None:
            raise SweepError("--sweep-index needs --out DIR for its part file")
        if not 0 <= args.sweep_index < len(configs):
            raise SweepError(f"--sweep-index {args.sweep_index} is outside 0..{len(configs) - 1}")
        configs = [configs[args.sweep_index]]
    sources = _sources(args)
    common = {
        "config_file": args.config,
        "symbols": tuple(args.symbols) if args.symbols else None,
        "models_dir": str(args.models_dir) if args.models_dir else None,
        "allow_missing_models": args.allow_missing_models,
    }
    _check(configs, common, err)  # every value validated and the models verified before a worker starts
    jobs = jobs_for(configs, sources, **common)
    workers = max(1, min(args.jobs or cores(), len(jobs)))
    out.print(
        f"sweep: {len(configs)} configuration(s) x {len(sources)} source(s) = {len(jobs)} runs, {workers} at once"
    )
    done = [0]

    def progress(row: dict[str, Any]) -> None:
        done[0] += 1
        err.print(
            f"  {done[0]}/{len(jobs)} {row['config']} on {row['source']}: PnL {row['pnl']:+.2f}, {row['cpu_s']} CPU s"
        )

    rows = run_sweep(jobs, workers, progress)
    info = {
        "configs": [{"name": c.name, "set": c.overrides} for c in configs],
        "sources": [s.label for s in sources],
        "workers": workers,
    }
    return rows, info


def _sources(args: argparse.Namespace) -> list[Source]:
    if args.synthetic_steps is not None:
        if args.data:
            raise SweepError("give either --data or --synthetic-steps, not both")
        if args.synthetic_steps <= 0:
            raise SweepError("--synthetic-steps must be > 0")
        return [Source(f"synthetic-{seed}", seed=seed, steps=args.synthetic_steps) for seed in dict.fromkeys(args.seed)]
    roots = args.data or [Path(run_settings(args.config, None, None).data_dir) / "recordings"]
    missing = [str(r) for r in roots if not Path(r).is_dir()]
    if missing:
        raise SweepError(f"recording root(s) do not exist: {', '.join(missing)} (record with `quantumedge record`)")
    return [Source(str(r), data=str(r)) for r in dict.fromkeys(roots)]


def _check(configs: list[RunConfig], common: dict[str, Any], err: Console) -> None:
    base = run_settings(common["config_file"], common["symbols"], common["models_dir"])
    for config in configs:
        try:
            apply_overrides(base, config.overrides)
        except SweepError as exc:
            raise SweepError(f"configuration {config.name!r}: {exc}") from None
    load_backtest_models(base, allow_missing=common["allow_missing_models"], console=err)


def print_sweep(rows: list[dict[str, Any]], info: dict[str, Any], out: Console) -> None:
    table = Table(title=f"sweep: {len(rows)} runs, {info['wall_s']} s wall, {info['worker_cpu_s']} CPU s in workers")
    for col in ("configuration", "sources", "round trips", "win rate", "fills", "fees", "PnL", "worst DD", "halted"):
        table.add_column(col, justify="left" if col == "configuration" else "right")
    for t in by_config(rows):
        win = "-" if t["win_rate"] is None else f"{t['win_rate']:.0%}"
        table.add_row(
            t["config"],
            str(t["sources"]),
            str(t["round_trips"]),
            win,
            str(t["fills"]),
            f"{t['fees']:.2f}",
            f"{t['pnl']:+.2f}",
            f"{t['worst_drawdown_fraction']:.2%}",
            str(t["halted_sources"]),
        )
    out.print(table)


__all__ = ["Job", "add_sweep_arguments", "is_sweep", "sweep_main"]

"""`quantumedge backtest`: recorded (or synthetic) market events through the services' own domain code.

quantumedge backtest --data var/recordings                       # what `quantumedge record` wrote
quantumedge backtest --synthetic-steps 20000 --seed 11           # the deterministic synthetic market
quantumedge backtest --data var/recordings --out var/backtests/run1   # also fills, equity, decisions as Parquet

Limits, policy and fees come from the same configuration as the services (--config YAML, QE_ env vars),
e.g. QE_RISK__LIMITS__MAX_ORDER_NOTIONAL=250. The models are the registry's promoted ones, verified by
checksum and feature schema exactly as inference does; a missing or refused model stops the run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from quantumedge.backtest.baselines import RandomEntries, buy_and_hold
from quantumedge.backtest.metrics import FigureBuilder, Figures
from quantumedge.backtest.output import ParquetOutput
from quantumedge.backtest.report import write_report
from quantumedge.backtest.runs import BacktestError, load_backtest_models, run_settings, source_events
from quantumedge.backtest.simulation import Backtest, MarketInput, Observer, Recorded
from quantumedge.backtest.summary import print_figures
from quantumedge.backtest.sweep import Source
from quantumedge.backtest.sweep_cli import add_sweep_arguments, is_sweep, sweep_main
from quantumedge.backtest.trades import TradeBook
from quantumedge.inference.models import ModelSet
from quantumedge.ingest.replay import NoRecordingError
from quantumedge.settings import Settings
from quantumedge.shared.config import ConfigError
from quantumedge.shared.logs import setup_logging
from quantumedge.shared.market_files import UnreadableRecordingError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="quantumedge backtest",
        description="Replay market events through the services' features, models, risk and paper execution.",
    )
    src = p.add_argument_group("data (one of)")
    src.add_argument(
        "--data",
        type=Path,
        nargs="+",
        help="recording root (root/symbol=SYM/...); default <data_dir>/recordings. A sweep takes several",
    )
    src.add_argument("--synthetic-steps", type=int, metavar="N", help="run N steps (1 s) of the synthetic market")
    src.add_argument(
        "--seed", type=int, nargs="+", default=[11], help="synthetic market seed (default 11; a sweep takes several)"
    )
    p.add_argument("--symbols", nargs="+", metavar="SYMBOL", help="symbols to trade (default: settings.symbols)")
    p.add_argument("--models-dir", type=Path, help="model registry (default: settings.models_dir)")
    p.add_argument("--config", help="YAML configuration (QE_ env vars override it), as for the services")
    p.add_argument(
        "--allow-missing-models",
        action="store_true",
        help="run the symbols that have models instead of stopping when one is missing",
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="write fills, equity and decisions (Parquet) and summary")
    p.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="write DIR/index.html: equity, drawdown, trades, ratios, breakdowns, buy-and-hold and random entries",
    )
    p.add_argument(
        "--equity-interval-ms", type=int, default=1000, help="equity curve sampling in market time (default 1000)"
    )
    p.add_argument("--log-level", default="WARNING", help="log level of the engines' own logs (default WARNING)")
    add_sweep_arguments(p)
    return p


def _run_settings(args: argparse.Namespace, err: Console) -> Settings | None:
    """The settings of this run (in-memory bus, embedded, the CLI's symbols and models); None after printing
    the error when the arguments or the configuration are wrong."""
    if args.synthetic_steps is not None and args.data is not None:
        err.print("[red]error:[/red] give either --data or --synthetic-steps, not both")
        return None
    if args.synthetic_steps is not None and args.synthetic_steps <= 0:
        err.print("[red]error:[/red] --synthetic-steps must be > 0")
        return None
    try:
        settings = run_settings(args.config, args.symbols, args.models_dir)
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        return None
    setup_logging(args.log_level, service="backtest")
    return settings


def backtest_main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Console(width=None if sys.stdout.isatty() else 140)
    err = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
    if is_sweep(args):
        return sweep_main(args, out, err)
    if len(args.data or ()) > 1 or len(args.seed) > 1:
        err.print("[red]error:[/red] several --data roots or --seed values need --sweep FILE")
        return 2
    args.data = args.data[0] if args.data else None
    args.seed = args.seed[0]
    settings = _run_settings(args, err)
    if settings is None:
        return 2
    began = time.monotonic()
    output: ParquetOutput | None = None
    try:
        models = load_backtest_models(settings, allow_missing=args.allow_missing_models, console=err)
        events = market_events(settings, args)
        builder = FigureBuilder(list(settings.symbols))
        book, curve = TradeBook(), Recorded()
        observers: list[Observer] = [builder, book, curve]
        if args.out:
            output = ParquetOutput(args.out)
            observers.append(output)
        run = Backtest(settings, models, observers, equity_interval_ns=args.equity_interval_ms * 1_000_000)
        with _progress(err) as progress:
            task = progress.add_task("events", total=None)
            result = run.run(events, progress=lambda n: progress.advance(task, n))
    except (BacktestError, UnreadableRecordingError, NotADirectoryError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        if output is not None:
            output.close()
        return 2
    figs = builder.figures(result)
    if figs.events == 0:
        if output is not None:
            output.close()
        err.print(f"[red]error:[/red] no market events for {', '.join(settings.symbols)} in the input")
        return 2
    elapsed = time.monotonic() - began
    print_figures(figs, out, title=_title(args, elapsed, figs))
    _warn(err, settings, models, run, figs)
    if output is not None:
        paths = output.close(figs, _run_info(args, settings, models))
        out.print(f"wrote {', '.join(str(p) for p in paths)}")
    if args.report:
        path = _report(args, settings, models, book, curve, _title(args, elapsed, figs), result.signals)
        out.print(f"wrote {path}")
    return 0


def _warn(err: Console, settings: Settings, models: ModelSet, run: Backtest, figs: Figures) -> None:
    """What the figures do not say: symbols whose features never warmed up, events timed by receive time."""
    for symbol in settings.symbols:
        if symbol in models.predictors and not run.features.warmed_up(symbol):
            err.print(f"[yellow]warning:[/yellow] {symbol}: its data never filled the feature window (absent?)")
    if figs.untimed_events:
        err.print(
            f"[yellow]warning:[/yellow] {figs.untimed_events:,} events had no exchange time and were timed by "
            "their receive time; the recording's order around them may not be the market's"
        )


def _report(
    args, settings: Settings, models: ModelSet, book: TradeBook, curve: Recorded, title: str, signals: int
) -> Path:
    """The HTML report, with the same market run on random entries (same exits) and buy-and-hold."""
    rate = len(book.trades) / max(1, signals)
    horizons = [t.horizon_min for t in book.trades if t.horizon_min] or [int(settings.inference.horizons[0])]
    rand_book, rand_curve = TradeBook(), Recorded()
    random_run = Backtest(
        settings, models, [rand_book, rand_curve], signal_source=RandomEntries(max(horizons, key=horizons.count), rate)
    )
    random_run.run(market_events(settings, args))
    bh = buy_and_hold(curve.equity, random_run, settings)
    return write_report(
        args.report,
        title,
        book.trades,
        curve.equity,
        {"random entries, same exits": (rand_book.trades, rand_curve.equity, None), "buy and hold": ([], [], bh)},
    )


def market_events(settings: Settings, args: argparse.Namespace) -> Iterator[MarketInput]:
    if args.synthetic_steps:
        return source_events(settings, Source("synthetic", seed=args.seed, steps=args.synthetic_steps))
    root = args.data or Path(settings.data_dir) / "recordings"
    if not Path(root).is_dir():
        raise BacktestError(f"recording root {root} does not exist (record one with `quantumedge record`)")
    return _peeked(source_events(settings, Source(str(root), data=str(root))))


def _peeked(events: Iterator[MarketInput]) -> Iterator[MarketInput]:
    # ReplaySource.events is a generator: pull the first item now so "nothing recorded" fails before the run.
    try:
        head = next(events)
    except NoRecordingError as exc:
        raise BacktestError(str(exc)) from None
    except StopIteration:
        return iter(())

    def chain() -> Iterator[MarketInput]:
        yield head
        yield from events

    return chain()


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description} {task.completed:,.0f}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _title(args: argparse.Namespace, elapsed: float, figs: Figures) -> str:
    source = f"synthetic seed {args.seed}" if args.synthetic_steps else str(args.data or "recordings")
    return f"QuantumEdge backtest: {source}, {figs.span_s / 3600:.2f} h of market, {elapsed:.1f} s"


def _run_info(args: argparse.Namespace, settings: Settings, models: ModelSet) -> dict:
    return {
        "source": {"synthetic_steps": args.synthetic_steps, "seed": args.seed}
        if args.synthetic_steps
        else {"data": str(args.data or Path(settings.data_dir) / "recordings")},
        "symbols": list(settings.symbols),
        "models": [
            {"symbol": s, "horizon": h, "version": m.entry.version, "sha256": m.entry.sha256}
            for (s, h), m in sorted(models.served.items())
        ],
        "limits": json.loads(settings.risk.limits.model_dump_json()),
    }


if __name__ == "__main__":  # pragma: no cover
    sys.exit(backtest_main())

"""One backtest run from plain values (settings file, overrides, source): what a sweep's worker runs.

The single-run CLI and the sweep share this, so a sweep's row for a configuration is the run the CLI gives
for it alone."""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quantumedge.backtest.metrics import FigureBuilder, Figures
from quantumedge.backtest.simulation import Backtest, MarketInput
from quantumedge.backtest.sweep import Job, Source, apply_overrides
from quantumedge.inference.domain.features import make_schema
from quantumedge.inference.models import ModelSet, ModelsUnavailableError, load_models
from quantumedge.inference.registry import Registry, RegistryError
from quantumedge.ingest.replay import ReplaySource
from quantumedge.ingest.synthetic import SyntheticMarket
from quantumedge.settings import Settings, load_settings

if TYPE_CHECKING:
    from rich.console import Console


class BacktestError(RuntimeError):
    """Something the run needs is missing or unusable; the message names it."""


def run_settings(config_file: str | None, symbols: tuple[str, ...] | None, models_dir: str | None) -> Settings:
    """The settings of a backtest: the services' configuration, in-memory bus, embedded, the CLI's picks."""
    settings = load_settings(config_file)
    updates: dict[str, object] = {"bus": "memory", "embedded": True}
    if symbols:
        updates["symbols"] = list(dict.fromkeys(s.upper() for s in symbols))
    if models_dir:
        updates["models_dir"] = Path(models_dir)
    return settings.model_copy(update=updates)


def source_events(settings: Settings, source: Source) -> Iterator[MarketInput]:
    if source.data is None:
        return SyntheticMarket(list(settings.symbols), seed=source.seed or 0).events(source.steps or 0)
    # Row views from the recording's columns: no protobuf is built per event on the backtest path.
    return ReplaySource(Path(source.data), settings.symbols).rows()


def run_figures(job: Job) -> Figures:
    """The figures of `job`'s configuration over its source (its recording root was checked by the sweep)."""
    settings = apply_overrides(run_settings(job.config_file, job.symbols, job.models_dir), job.config.overrides)
    models = load_backtest_models(settings, allow_missing=job.allow_missing_models, console=None)
    builder = FigureBuilder(list(settings.symbols))
    result = Backtest(settings, models, [builder]).run(source_events(settings, job.source))
    return builder.figures(result)


def load_backtest_models(settings: Settings, allow_missing: bool, console: Console | None) -> ModelSet:
    """The promoted, verified models of every symbol x horizon, or BacktestError naming what is missing.

    A horizon the registry promotes nothing for (the gate refused it) is left out, as the service leaves it
    out, and said so; a promoted model that cannot be served (tampered, wrong schema, refused) stops the run
    unless `allow_missing`: a backtest must not quietly judge a different ensemble than the one promoted."""
    inf = settings.inference
    registry = Registry(settings.models_dir)
    try:
        models = load_models(
            registry,
            list(settings.symbols),
            [int(h) for h in inf.horizons],
            make_schema(),
            require="none",
            combine=inf.combine_horizons,
        )
    except (ModelsUnavailableError, RegistryError) as exc:
        raise BacktestError(f"{exc} (registry {registry.root}; see `quantumedge train`)") from None
    broken = [f"{st.symbol}/h{st.horizon}: {st.problem}" for st in models.status if st.version and not st.served]
    if broken and not allow_missing:
        raise BacktestError(
            "promoted models cannot be served: " + "; ".join(broken) + f" (registry {registry.root}; see "
            "`quantumedge train`, or --allow-missing-models to run without them)"
        )
    if not models.predictors:
        raise BacktestError("no symbol has usable models: " + "; ".join(models.missing or ["registry empty"]))
    for missing in models.missing:
        if console is not None:
            console.print(f"[yellow]warning:[/yellow] not traded: {missing}")
    return models


def run_job(job: Job) -> dict[str, Any]:
    """One configuration over one source, in a worker process: the figures as one flat row."""
    started = time.process_time()
    figs = run_figures(job)
    row: dict[str, Any] = {"config": job.config.name, "source": job.source.label}
    row.update({f"set.{k}": v for k, v in job.config.overrides.items()})
    row.update(_flat_figures(figs))
    row["cpu_s"] = round(time.process_time() - started, 3)
    return row


def _flat_figures(figs: Any) -> dict[str, Any]:
    d = asdict(figs)
    per_symbol = d.pop("per_symbol", {})
    d["halts"] = ";".join(d["halts"])
    # From the figures themselves: asdict() rebuilds a Counter from its (key, count) pairs as keys.
    d["rejections_by_reason"] = json.dumps(dict(figs.rejections_by_reason), sort_keys=True)
    d["order_rejects_by_code"] = json.dumps(dict(figs.order_rejects_by_code), sort_keys=True)
    d["pnl"] = figs.pnl
    d["win_rate"] = figs.win_rate
    d["per_symbol"] = json.dumps(per_symbol, sort_keys=True, default=str)
    return d


def run_sweep(
    jobs: Sequence[Job], workers: int, done: Callable[[dict[str, Any]], None] | None = None
) -> list[dict[str, Any]]:
    """Every job, `workers` at a time in spawned processes (one process per core given), in job order."""
    if workers <= 1 or len(jobs) <= 1:
        rows = []
        for job in jobs:
            rows.append(run_job(job))
            if done:
                done(rows[-1])
        return rows
    by_index: dict[int, dict[str, Any]] = {}
    # Spawned, not forked: a forked child would inherit whatever threads and locks the parent holds.
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_job, job): i for i, job in enumerate(jobs)}
        for future in as_completed(futures):
            by_index[futures[future]] = row = future.result()
            if done:
                done(row)
    return [by_index[i] for i in range(len(jobs))]

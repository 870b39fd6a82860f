"""Backtest throughput: synthetic market events per second through features, models, risk and paper
execution on one core (the same engines the services run), and the memory the run's records take; and
what the fill model's realism changes on that same run (latency, queue position, commission asset,
post-only entries): orders, fills, refusals and PnL per setting.

The run uses the horizons the registry promotes (models/manifest.json: h5 only since the gate refused h1 and
h30), each required for every symbol: a promoted model that is missing, tampered or refused by the gate
still stops the bench, naming it."""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console

from bench import heldout
from bench.backtest_speed import bench_speed, cpu
from quantumedge.backtest.cli import load_backtest_models
from quantumedge.backtest.metrics import FigureBuilder
from quantumedge.backtest.simulation import Backtest
from quantumedge.backtest.trades import TradeBook, expectancy_interval
from quantumedge.inference.registry import Registry
from quantumedge.ingest.synthetic import SyntheticMarket
from quantumedge.settings import Settings, load_settings

STEPS = 3_600  # one-second steps: an hour of market for two symbols
HELD_OUT_SEEDS, HELD_OUT_HOURS = heldout.HELD_OUT_SEEDS, 6.0  # seeds no shipped model saw (trained on 1001)
LIVE_SEED, LIVE_HOURS = 4242, 12.0  # the run the bench once reported as the models' expectancy


def promoted_settings() -> Settings:
    """The settings with inference.horizons cut to the horizons the registry promotes for some symbol."""
    settings = load_settings()
    registry = Registry(settings.models_dir)
    doc = registry.load()
    horizons = [
        h for h in settings.inference.horizons if any(registry.promoted_version(s, h, doc) for s in settings.symbols)
    ]
    if not horizons:
        raise RuntimeError(f"no horizon of {settings.inference.horizons} is promoted in {registry.manifest_path}")
    print(f"  models: horizons {horizons} (promoted in {registry.manifest_path}) for {', '.join(settings.symbols)}")
    return settings.model_copy(update={"inference": settings.inference.model_copy(update={"horizons": horizons})})


def bench_backtest() -> None:
    logging.getLogger("quantumedge").setLevel(logging.ERROR)  # a limit halting the run is a figure, not news
    settings = promoted_settings()
    models = load_backtest_models(settings, allow_missing=False, console=Console(stderr=True))
    events = list(SyntheticMarket(list(settings.symbols), seed=11).events(STEPS))
    builder = FigureBuilder(list(settings.symbols))
    result, took = cpu(lambda: Backtest(settings, models, [builder]).run(events))
    figs = builder.figures(result)
    print(
        f"  backtest (protobuf events in memory, with figures): {figs.events:,} events in {took:.2f} CPU-s = "
        f"{figs.events / took:,.0f} events/CPU-s ({figs.signals:,} signals, {figs.fills} fills, PnL {figs.pnl:+.2f})"
    )
    bench_speed(settings, models)
    bench_expectancy(settings)
    bench_fill_models(settings, models, events)


def bench_expectancy(settings, seeds=HELD_OUT_SEEDS, hours=HELD_OUT_HOURS) -> dict:
    """The default models' net expectancy per trade on held-out synthetic seeds, against the oracle.

    Judged as the gate judges (bench/heldout.py: per symbol, loss-streak pause off). With the operator's
    pause on, one account over both symbols stopped for good at its first five losses in a row, so the
    figure was the trades up to a losing streak: a stopping rule that ends every sample on losses."""
    t0 = time.perf_counter()
    print(f"  default models vs the oracle on held-out seeds {list(seeds)} ({hours:g} h each, per symbol):")
    pooled = heldout.report(heldout.measure(settings, seeds, hours, log=lambda _m: None))
    m = pooled["model"]
    verdict = "earns" if m["ci_lo"] > 0 else "does NOT prove an edge" if m["trades"] else "makes no trades"
    print(f"  default models {verdict} on the held-out seeds ({time.perf_counter() - t0:.0f} s)")
    bench_live_limits(settings)
    return pooled


def bench_live_limits(settings: Settings, seed: int = LIVE_SEED, hours: float = LIVE_HOURS) -> dict[str, object]:
    """The same models with the operator's limits (both symbols in one account, loss-streak halt on).

    What an operator would see, and why it is no expectancy: the first halt (max_loss_streak halts for good)
    ends the sample, on a losing streak by construction."""
    t0 = time.perf_counter()
    models = load_backtest_models(settings, allow_missing=False, console=Console(stderr=True))
    book = TradeBook()
    events = SyntheticMarket(list(settings.symbols), seed=seed).events(int(hours * 3600))
    result = Backtest(settings, models, [book]).run(events)
    mean, lo, hi = expectancy_interval([t.return_bps for t in book.trades])
    halts = Counter(h.limit for h in result.halts)
    stopped = f"first halt at {(result.halts[0].time_ns - result.first_time_ns) / 3.6e12:.1f} h" if halts else "no halt"
    print(
        f"  live limits, seed {seed} ({hours:g} h, {len(settings.symbols)} symbols, one account, "
        f"max_loss_streak={settings.risk.limits.max_loss_streak}): {len(book.trades)} trades, "
        f"{mean:+.2f} bp [{lo:+.2f}, {hi:+.2f}]; loss-streak halts {halts.get('max_loss_streak', 0)}, "
        f"other halts {sum(halts.values()) - halts.get('max_loss_streak', 0)}, {stopped}, "
        f"halted at end {result.halted_at_end} ({time.perf_counter() - t0:.0f} s)"
    )
    return {"trades": len(book.trades), "mean_bps": mean, "halts": dict(halts), "halted_at_end": result.halted_at_end}


# (label, execution settings, risk settings) of the fill model, each on top of the one before.
FILL_MODELS: list[tuple[str, dict[str, object], dict[str, object]]] = [
    ("touch only", {"paper_queue_position": False, "paper_fee_asset": "quote"}, {}),
    ("+ queue position", {"paper_queue_position": True}, {}),
    ("+ fees in the asset charged", {"paper_fee_asset": "received"}, {}),
    ("+ 10 ms feed, 25 ms entry", {"paper_feed_latency_ms": 10.0, "paper_latency_ms": 25.0}, {}),
    ("+ 100 ms feed, 250 ms entry", {"paper_feed_latency_ms": 100.0, "paper_latency_ms": 250.0}, {}),
    ("+ post-only entries", {}, {"entry_order_type": "limit_maker"}),
]


class _Fills:
    """Every fill of a run by (order, n-th fill of it): what a fill model changed is read against another run."""

    def __init__(self) -> None:
        self.fills: dict[tuple[str, int], tuple[float, float]] = {}
        self._count: dict[str, int] = {}

    def on_decision(self, decision) -> None:
        pass

    def on_equity(self, point) -> None:
        pass

    def on_report(self, report) -> None:
        if report.HasField("fill"):
            cid = report.fill.client_order_id
            n = self._count[cid] = self._count.get(cid, 0) + 1
            self.fills[(cid, n)] = (report.fill.price, report.fill.quantity)

    def changed_from(self, other: _Fills) -> int:
        """Fills that are new, gone, or at another price or size than in `other`."""
        keys = self.fills.keys() | other.fills.keys()
        return sum(1 for k in keys if self.fills.get(k) != other.fills.get(k))


def bench_fill_models(settings=None, models=None, events=None) -> list[dict[str, object]]:
    """The same events and models under each fill model: how many fills (and which PnL) each one gives."""
    settings = settings or promoted_settings()
    models = models or load_backtest_models(settings, allow_missing=False, console=Console(stderr=True))
    events = events if events is not None else list(SyntheticMarket(list(settings.symbols), seed=11).events(STEPS))
    rows: list[dict[str, object]] = []
    execution: dict[str, object] = {}
    # The loss-streak halt off, so the run keeps trading and every fill model has fills to change.
    limits = settings.risk.limits.model_copy(update={"max_loss_streak": 0})
    for label, ex_update, risk_update in FILL_MODELS:
        execution = {**execution, **ex_update}
        run = settings.model_copy(
            update={
                "execution": settings.execution.model_copy(update=execution),
                "risk": settings.risk.model_copy(update={"limits": limits, **risk_update}),
            }
        )
        builder, seen = FigureBuilder(list(run.symbols)), _Fills()
        figs = builder.figures(Backtest(run, models, [builder, seen]).run(_copies(events)))
        rows.append(
            {
                "model": label,
                "seen": seen,
                "orders": figs.orders,
                "fills": figs.fills,
                "refused": figs.rejected_orders,
                "trips": figs.round_trips,
                "fees": figs.fees,
                "pnl": figs.pnl,
            }
        )
    base = rows[0]["seen"]
    print(f"  fill models on the standard backtest ({STEPS:,} steps, seed 11, shipped models, loss-streak halt off):")
    for row in rows:
        changed = row["seen"].changed_from(base)  # type: ignore[attr-defined]
        row["changed_fills"] = changed
        print(
            f"  fill model {row['model']:<30} orders {row['orders']:>5}  fills {row['fills']:>5}  "
            f"changed vs touch-only {changed:>4}  refused {row['refused']:>4}  round trips {row['trips']:>4}  "
            f"fees {row['fees']:>8.2f}  PnL {row['pnl']:+9.2f}"
        )
    return rows


def _copies(events):
    # A backtest stamps untimed events in place: every run gets its own copies.
    for event in events:
        copy = type(event)()
        copy.CopyFrom(event)
        yield copy


if __name__ == "__main__":
    bench_backtest()

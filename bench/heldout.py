"""The shipped models against the oracle on synthetic seeds no model was trained on.

Per held-out seed and symbol: the promoted models' round trips (count, mean net return with a 95%
confidence interval, win rate, net PnL) and the oracle's (backtest/oracle.py: it knows the planted
pressure) through the same risk, paper execution and fees, judged as the gate judges (loss-streak pause
off: nobody resumes a backtest). The oracle tells a market whose planted edge is weak (oracle poor too)
from a model that fails (oracle earns, model loses); the interval tells sample noise from a loss.

    python -m bench.heldout --seeds 4242 5151 --hours 12 --json /tmp/strat12-heldout.json

Held-out seeds are for reporting only: nothing is selected or tuned on them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from quantumedge.backtest.oracle import OracleSignals
from quantumedge.backtest.simulation import Backtest
from quantumedge.backtest.trades import Trade, TradeBook, expectancy_interval
from quantumedge.inference.domain.features import make_schema
from quantumedge.inference.models import ModelSet, load_models
from quantumedge.inference.registry import Registry
from quantumedge.ingest.synthetic import SyntheticMarket
from quantumedge.settings import Settings, load_settings
from quantumedge.training.gate import judging_settings

HELD_OUT_SEEDS = (4242, 5151, 6262, 7373)  # never a training seed (the shipped models: models/manifest.json)


class _Entries:
    """Each approved entry's signal (p_up of its horizon, drift) and the refusals by reason code."""

    def __init__(self) -> None:
        self._signals: dict[str, object] = {}
        self.entry_p: list[float] = []
        self.refusals: Counter[str] = Counter()
        self.drift_signals = 0
        self.signals = 0

    def on_signal(self, signal) -> None:
        self.signals += 1
        self.drift_signals += bool(signal.drift)
        self._signals[signal.signal_id] = signal
        if len(self._signals) > 5_000:
            self._signals.pop(next(iter(self._signals)))

    def on_decision(self, decision) -> None:
        if not decision.approved:
            self.refusals.update(r.split(":")[0] for r in decision.reasons[:1])
        elif decision.intent.kind == 1:  # INTENT_KIND_ENTRY
            sig = self._signals.get(decision.signal_id)
            self.entry_p.append(max((p.p_up for p in sig.predictions), default=float("nan")) if sig else float("nan"))

    def on_report(self, report) -> None:
        pass

    def on_equity(self, point) -> None:
        pass


def trade_stats(trades: list[Trade]) -> dict[str, float]:
    """Count, mean net return (bps) with its 95% interval, win rate, net PnL, exit reasons."""
    mean, lo, hi = expectancy_interval([t.return_bps for t in trades])
    n = len(trades)
    return {
        "trades": n,
        "mean_bps": mean,
        "ci_lo": lo,
        "ci_hi": hi,
        "win_rate": sum(t.pnl > 0 for t in trades) / n if n else 0.0,
        "net_pnl": sum(t.pnl for t in trades),
        "exits": dict(Counter(t.reason for t in trades)),
    }


def promoted_horizons(settings: Settings, symbol: str) -> list[int]:
    registry = Registry(settings.models_dir)
    doc = registry.load()
    return [int(h) for h in settings.inference.horizons if registry.promoted_version(symbol, int(h), doc)]


def run_symbol(base: Settings, symbol: str, seed: int, steps: int) -> dict[str, object]:
    """The promoted models of `symbol` and the oracle on `seed`: their figures and the model's trades."""
    horizons = promoted_horizons(base, symbol)
    s = judging_settings(base).model_copy(update={"symbols": [symbol]})
    out: dict[str, object] = {"seed": seed, "symbol": symbol, "horizons": horizons}
    if horizons:
        s_model = s.model_copy(update={"inference": s.inference.model_copy(update={"horizons": horizons})})
        models = load_models(Registry(s.models_dir), [symbol], horizons, make_schema(), require="none")
        book, seen = TradeBook(), _Entries()
        Backtest(s_model, models, [book, seen]).run(SyntheticMarket([symbol], seed=seed).events(steps))
        out["model"] = trade_stats(book.trades)
        out["model_returns"] = [round(t.return_bps, 2) for t in book.trades]
        out["model_detail"] = {
            "signals": seen.signals,
            "drift_signals": seen.drift_signals,
            "refusals": dict(seen.refusals.most_common(6)),
            "trades": [
                {"ret_bps": round(t.return_bps, 2), "exit": t.reason, "dur_s": round(t.duration_s), "p_up": p}
                for t, p in zip(book.trades, seen.entry_p + [float("nan")] * len(book.trades), strict=False)
            ],
        }
    else:
        out["model"] = trade_stats([])  # the gate refused every horizon: the system trades nothing
    market = SyntheticMarket([symbol], seed=seed, keep_latent=True)
    fees = s.execution.paper_taker_fee_bps + s.execution.paper_maker_fee_bps
    oracle_h = tuple(horizons or [5])
    oracle = OracleSignals(market, oracle_h, dict.fromkeys(oracle_h, 1.0), fees, int(s.inference.row_lateness_ms * 1e6))
    obook = TradeBook()
    Backtest(s, ModelSet(), [obook], signal_source=oracle).run(market.events(steps))
    out["oracle"] = trade_stats(obook.trades)
    out["oracle_returns"] = [round(t.return_bps, 2) for t in obook.trades]
    return out


def pooled(rows: list[dict[str, object]], who: str) -> dict[str, float]:
    """One sample of every row's round trips (returns in bps; the PnL summed)."""
    returns = [x for r in rows for x in r.get(f"{who}_returns", [])]  # type: ignore[union-attr]
    st = trade_stats([Trade("", "", 0, entry_notional=1e4, pnl=x) for x in returns])
    st["net_pnl"] = sum(r[who]["net_pnl"] for r in rows)  # type: ignore[index]
    st["win_rate"] = sum(x > 0 for x in returns) / len(returns) if returns else 0.0
    return st


def fmt(st: dict[str, float]) -> str:
    if not st["trades"]:
        return f"{0:>4} trades {'':>30}"
    return (
        f"{st['trades']:>4} trades {st['mean_bps']:+7.2f} bp [{st['ci_lo']:+7.2f}, {st['ci_hi']:+7.2f}]"
        f" win {st['win_rate']:4.0%} PnL {st['net_pnl']:+8.2f}"
    )


def report(rows: list[dict[str, object]], print_=print) -> dict[str, dict[str, float]]:
    """Print one line per seed x symbol and the pooled figures; returns the pooled figures."""
    print_("  held-out seed symbol  | model (net bp/trade, 95% CI)                        | oracle")
    for r in rows:
        print_(f"  {r['seed']:>13} {r['symbol']:<7} | {fmt(r['model'])} | {fmt(r['oracle'])}")  # type: ignore[arg-type]
    out = {who: pooled(rows, who) for who in ("model", "oracle")}
    print_(f"  {'pooled':>13} {'':<7} | {fmt(out['model'])} | {fmt(out['oracle'])}")
    return out


def measure(settings: Settings, seeds, hours: float, symbols=None, log=print) -> list[dict[str, object]]:
    steps = int(hours * 3600)
    rows = []
    for seed in seeds:
        for symbol in symbols or settings.symbols:
            t0 = time.perf_counter()
            row = run_symbol(settings, symbol, seed, steps)
            row["seconds"] = round(time.perf_counter() - t0)
            log(f"  seed {seed} {symbol}: model {fmt(row['model'])} | oracle {fmt(row['oracle'])} ({row['seconds']} s)")
            rows.append(row)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.heldout", description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=list(HELD_OUT_SEEDS))
    p.add_argument("--hours", type=float, default=12.0)
    p.add_argument("--symbols", nargs="+")
    p.add_argument("--models-dir", type=Path)
    p.add_argument("--json", type=Path, help="write every row (and the model's trades) here")
    a = p.parse_args(argv)
    logging.getLogger("quantumedge").setLevel(logging.ERROR)
    settings = load_settings(**({"models_dir": a.models_dir} if a.models_dir else {}))
    rows = measure(settings, a.seeds, a.hours, a.symbols, log=lambda m: print(m, flush=True))
    report(rows)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

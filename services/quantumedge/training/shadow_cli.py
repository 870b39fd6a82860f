"""`quantumedge models`: run a model in shadow, compare it with the promoted one, promote or discard it.

quantumedge models shadow BTCUSDT 5 v2          # score v2 beside the promoted version (never traded)
quantumedge models compare BTCUSDT 5 --out cmp.json
quantumedge models promote BTCUSDT 5 --comparison cmp.json   # only if the figures name the shadow better
quantumedge models discard BTCUSDT 5
quantumedge models list

`compare` reads inference.signals.v1, inference.shadow_signals.v1 and the market topics from the bus (Kafka
with the operator's settings), labels the market with the promoted model's triple barriers and prints the
figures of both (shadow_compare.py). `promote` refuses a shadow that failed the promotion gate, whatever
the figures say, and (without --force) one the comparison did not name better.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from quantumedge.inference.domain.features import build_offline
from quantumedge.inference.registry import ModelEntry, Registry, RegistryError
from quantumedge.settings import load_settings
from quantumedge.shared import market_files, topics
from quantumedge.shared.bus import Bus
from quantumedge.shared.config import ConfigError
from quantumedge.training import shadow_compare
from quantumedge.training.labels import Barriers, triple_barrier
from quantumedge.v1 import market_pb2, signal_pb2

_BARRIER_FIELDS = ("take_profit_bps", "stop_loss_bps", "taker_fee_bps", "maker_fee_bps", "lateness_ns")


class CompareError(RuntimeError):
    """The streams cannot be compared; the message says what is missing."""


def barriers_of(entry: ModelEntry) -> Barriers:
    """The barriers the model was trained on (its manifest label): the outcomes it is judged by."""
    missing = [k for k in _BARRIER_FIELDS if k not in (entry.label or {})]
    if missing:
        raise CompareError(f"{entry.symbol} h{entry.horizon} {entry.version}: manifest label lacks {missing}")
    values = {k: float(entry.label[k]) for k in _BARRIER_FIELDS}
    return Barriers(**{**values, "lateness_ns": int(values["lateness_ns"])})


def _signals(bus: Bus, topic: str, symbol: str) -> list[signal_pb2.Signal]:
    out = [signal_pb2.Signal.FromString(r.value) for r in bus.read_all(topic)]
    return [s for s in out if s.symbol == symbol]


def _market(bus: Bus, symbol: str) -> list[market_pb2.MarketEvent]:
    events = [market_pb2.MarketEvent.FromString(r.value) for t in topics.MARKET for r in bus.read_all(t)]
    events = [e for e in events if e.symbol == symbol]
    return sorted(events, key=lambda e: e.exchange_time_ns or e.receive_time_ns)


def _predictions(signals: list[signal_pb2.Signal], horizon: int) -> tuple[str, np.ndarray, np.ndarray]:
    """(version, row times, p_up) of one horizon; CompareError when the stream has none or mixes versions."""
    rows = [(s.event_time_ns, p.p_up, p.model_version) for s in signals for p in s.predictions if p.horizon == horizon]
    versions = sorted({v for _, _, v in rows})
    if len(versions) != 1:
        raise CompareError(f"h{horizon}: expected one model version in the stream, found {versions or 'none'}")
    return versions[0], np.array([t for t, _, _ in rows], np.int64), np.array([p for _, p, _ in rows])


def compare_on_bus(bus: Bus, registry: Registry, settings, symbol: str, horizon: int) -> dict:
    """Both models' figures for symbol x horizon from what the bus carries (see shadow_compare)."""
    primary, shadow = _signals(bus, topics.SIGNALS, symbol), _signals(bus, topics.SHADOW_SIGNALS, symbol)
    if not shadow:
        raise CompareError(f"no shadow signals of {symbol} on {topics.SHADOW_SIGNALS} (mark one: models shadow)")
    v_a, t_a, p_a = _predictions(primary, horizon)
    v_b, t_b, p_b = _predictions(shadow, horizon)
    entry_a, entry_b = registry.get(symbol, horizon, v_a), registry.get(symbol, horizon, v_b)
    if entry_a is None or entry_b is None:
        raise CompareError(f"{symbol} h{horizon}: {v_a} or {v_b} is not in {registry.manifest_path}")
    barriers = barriers_of(entry_a)
    if barriers_of(entry_b) != barriers:
        raise CompareError(f"{v_a} and {v_b} were trained on different barriers: their outcomes differ")
    events = _market(bus, symbol)
    feats = build_offline(market_files.events_to_table(events)).get(symbol)
    if feats is None:
        raise CompareError(f"no market data of {symbol} on {', '.join(topics.MARKET)}")
    labels = triple_barrier(feats, horizon * 60.0, barriers)
    y, pa, pb = shadow_compare.join(feats.time_ns[labels.rows], labels.y, t_a, p_a, t_b, p_b)
    if not len(y):
        raise CompareError(f"{symbol} h{horizon}: no row has both predictions and a settled outcome yet")
    run = settings.model_copy(update={"symbols": [symbol]})
    out = {"symbol": symbol, "horizon": horizon, "rows": len(y)}
    for role, version, p, stream in (("promoted", v_a, pa, primary), ("shadow", v_b, pb, shadow)):
        figs = shadow_compare.figures(y, p)
        decisions = shadow_compare.would_be_decisions(run, events, stream)
        gate = (registry.get(symbol, horizon, version).gate or {}).get("passed") is True
        out[role] = {"version": version, "gate_passed": gate, **figs.to_dict(), "decisions": decisions}
    out["better"] = shadow_compare.better(shadow_compare.figures(y, pa), shadow_compare.figures(y, pb))
    return out


def print_comparison(cmp: dict, console: Console) -> None:
    table = Table(title=f"{cmp['symbol']} h{cmp['horizon']}: promoted vs shadow on {cmp['rows']} settled rows")
    for col in ("model", "version", "gate", "log loss", "Brier", "ECE", "mean p / base", "approved", "round trips"):
        table.add_column(col)
    table.add_column("expectancy bps")
    for role in ("promoted", "shadow"):
        m, d = cmp[role], cmp[role]["decisions"]
        table.add_row(
            role,
            m["version"],
            "passed" if m["gate_passed"] else "FAILED",
            f"{m['log_loss']:.5f}",
            f"{m['brier']:.5f}",
            f"{m['ece']:.4f}",
            f"{m['mean_p']:.3f} / {m['base_rate']:.3f}",
            str(d["approved"]),
            str(d["round_trips"]),
            f"{d['expectancy_bps']:+.2f}",
        )
    console.print(table)
    for role in ("promoted", "shadow"):
        refused = cmp[role]["decisions"].get("refused_by") or {}
        if refused:
            console.print(f"{role}: refused by " + ", ".join(f"{k} x{v}" for k, v in sorted(refused.items())))
    console.print(f"better on log loss against realised outcomes: [bold]{cmp['better']}[/bold]")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="quantumedge models", description="Shadow models: compare, promote, discard.")
    p.add_argument("--models-dir", type=Path, help="registry root (default: settings.models_dir)")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("list", help="the registry, with the promoted and shadow versions")
    for name, text in (
        ("shadow", "score VERSION in shadow beside the promoted version"),
        ("compare", "figures of the promoted and shadow models from the bus"),
        ("promote", "promote the shadow (gate-passed only; and named better unless --force)"),
        ("discard", "stop scoring the shadow"),
    ):
        a = sub.add_parser(name, help=text)
        a.add_argument("symbol")
        a.add_argument("horizon", type=int, help="minutes")
        if name == "shadow":
            a.add_argument("version")
        if name == "compare":
            a.add_argument("--out", type=Path, help="write the figures here as JSON")
        if name == "promote":
            a.add_argument("--comparison", type=Path, help="the JSON `compare --out` wrote")
            a.add_argument("--force", action="store_true", help="promote without a comparison (the gate still applies)")
    return p


def models_main(argv: Sequence[str] | None = None, bus: Bus | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Console(width=None if sys.stdout.isatty() else 160)
    err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
    try:
        settings = load_settings()
        registry = Registry(args.models_dir or settings.models_dir)
        return _run(args, settings, registry, bus, out)
    except (ConfigError, RegistryError, CompareError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        return 2


def _run(args, settings, registry: Registry, bus: Bus | None, out: Console) -> int:
    if args.action == "list":
        from quantumedge.training.cli import print_registry

        print_registry(registry, out)
    elif args.action == "shadow":
        entry = registry.mark_shadow(args.symbol, args.horizon, args.version)
        out.print(f"shadow {entry.symbol} h{entry.horizon} {entry.version}: scored on {topics.SHADOW_SIGNALS}")
    elif args.action == "discard":
        out.print(
            f"discarded shadow {args.symbol} h{args.horizon} {registry.discard_shadow(args.symbol, args.horizon)}"
        )
    elif args.action == "compare":
        cmp = _compare(settings, registry, bus, args.symbol, args.horizon)
        print_comparison(cmp, out)
        if args.out:
            args.out.write_text(json.dumps(cmp, indent=2, sort_keys=True) + "\n")
    elif args.action == "promote":
        version = _approved_version(args, registry)
        entry = registry.promote_shadow(args.symbol, args.horizon, version)
        out.print(f"promoted {entry.symbol} h{entry.horizon} {entry.version}; its shadow run is over")
    return 0


def _compare(settings, registry: Registry, bus: Bus | None, symbol: str, horizon: int) -> dict:
    if bus is not None:
        return compare_on_bus(bus, registry, settings, symbol, horizon)
    if settings.bus == "memory":
        raise CompareError("the in-process bus lives inside `quantumedge up`; compare reads Kafka (QE_BUS=kafka)")
    from quantumedge.shared.bus import make_bus

    own = make_bus(settings)
    try:
        return compare_on_bus(own, registry, settings, symbol, horizon)
    finally:
        own.close()


def _approved_version(args, registry: Registry) -> str | None:
    """The shadow version the comparison named better (None with --force: the gate alone decides)."""
    if args.force:
        return None
    if args.comparison is None:
        raise CompareError("promote needs --comparison FILE (from `models compare --out`) or --force")
    try:
        cmp = json.loads(args.comparison.read_text())
    except (OSError, ValueError) as exc:
        raise CompareError(f"cannot read the comparison {args.comparison}: {exc}") from None
    if (cmp.get("symbol"), cmp.get("horizon")) != (args.symbol, args.horizon):
        raise CompareError(f"{args.comparison} compares {cmp.get('symbol')} h{cmp.get('horizon')}, not this model")
    if cmp.get("better") != "shadow":
        raise CompareError(
            f"the comparison names {cmp.get('better')!r} better, not the shadow: discard it or compare again"
        )
    return cmp["shadow"]["version"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(models_main())

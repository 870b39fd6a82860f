"""`quantumedge train`: train, gate, export and register models; promote a version; list the registry.

quantumedge train --synthetic-steps 172800 --promote-new          # the shipped defaults (48 h of market)
quantumedge train --data var/recordings --symbols BTCUSDT         # from recorded files
quantumedge train --promote BTCUSDT 5 v3                          # serve another version (gate-passed only)
quantumedge train --list

Barriers and fees of the labels come from the same configuration the services run on (--config,
QE_RISK__LIMITS__TAKE_PROFIT_BPS, QE_EXECUTION__PAPER_TAKER_FEE_BPS, ...). --promote-new promotes only
the models that pass the promotion gate (training/gate.py); every model is registered with its figures.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from quantumedge.inference.domain.features import FeatureConfig, make_schema
from quantumedge.inference.models import describe_source
from quantumedge.inference.registry import Registry, RegistryError
from quantumedge.settings import Settings, load_settings
from quantumedge.shared.config import ConfigError
from quantumedge.training import dataset, gate
from quantumedge.training.labels import Barriers
from quantumedge.training.model import ModelParams
from quantumedge.training.pipeline import (
    DEFAULT_HORIZONS,
    TrainConfig,
    TrainingError,
    TrainResult,
    UnlearnableError,
    register,
    train_one,
)
from quantumedge.training.synthetic_data import write_synthetic_recording


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    # One function per argument group, in the order `--help` shows them.
    _data_arguments(p)
    _label_arguments(p)
    _model_arguments(p)
    _registry_arguments(p)
    return p


def _data_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("data")
    src.add_argument("--data", type=Path, help="recording root (root/symbol=SYM/...); default <data_dir>/recordings")
    src.add_argument(
        "--synthetic-steps",
        type=int,
        metavar="N",
        help="generate N steps (seconds) of the synthetic market into a temporary recording and train on it",
    )
    src.add_argument("--synthetic-seed", type=int, default=7, help="seed of the synthetic market (default 7)")
    src.add_argument(
        "--synthetic-edge",
        type=float,
        default=None,
        metavar="BPS_PER_S",
        help="planted edge of the synthetic market (default: ingest.synthetic_edge_bps_per_s; 0 = no edge)",
    )
    src.add_argument("--keep-data", type=Path, metavar="DIR", help="write the synthetic recording here and keep it")
    src.add_argument("--symbols", nargs="+", metavar="SYMBOL", help="symbols to train (default: settings.symbols)")
    src.add_argument("--config", help="YAML configuration (QE_ env vars override it): barriers, fees, symbols")


def _label_arguments(p: argparse.ArgumentParser) -> None:
    lab = p.add_argument_group("labels and validation")
    lab.add_argument(
        "--horizons",
        nargs="+",
        type=int,
        default=list(DEFAULT_HORIZONS),
        metavar="MIN",
        help="horizons in minutes: each model's time stop (default 1 5 30)",
    )
    lab.add_argument("--folds", type=int, default=3, help="purged walk-forward folds (default 3)")
    lab.add_argument("--holdout-fraction", type=float, default=0.2, help="held-out tail of the data (default 0.2)")
    lab.add_argument("--min-trades", type=int, default=gate.GateConfig.min_trades, help="held-out round trips needed")
    lab.add_argument(
        "--max-parity",
        type=float,
        default=1e-5,
        help="refuse to register when ONNX and XGBoost differ by more (default 1e-5)",
    )


def _model_arguments(p: argparse.ArgumentParser) -> None:
    mdl = p.add_argument_group("model")
    mdl.add_argument("--seed", type=int, default=7, help="training seed (default 7)")
    mdl.add_argument("--n-estimators", type=int, default=ModelParams.n_estimators)
    mdl.add_argument("--max-depth", type=int, default=ModelParams.max_depth)
    mdl.add_argument("--learning-rate", type=float, default=ModelParams.learning_rate)
    mdl.add_argument("--min-child-weight", type=float, default=ModelParams.min_child_weight)


def _registry_arguments(p: argparse.ArgumentParser) -> None:
    reg = p.add_argument_group("registry")
    reg.add_argument("--models-dir", type=Path, help="registry root (default: settings.models_dir)")
    reg.add_argument("--promote-new", action="store_true", help="promote every new version that passes the gate")
    reg.add_argument(
        "--shadow",
        action="store_true",
        help="score every new version in shadow beside the promoted one (inference.shadow_signals.v1; never traded)",
    )
    reg.add_argument("--no-register", action="store_true", help="train and report only; write nothing")
    reg.add_argument(
        "--promote", nargs=3, metavar=("SYMBOL", "HORIZON", "VERSION"), help="promote an existing version (no training)"
    )
    reg.add_argument("--list", action="store_true", help="print the registry and exit")


def build_parser() -> argparse.ArgumentParser:
    return add_arguments(
        argparse.ArgumentParser(prog="quantumedge train", description="Train, gate, register and promote the models.")
    )


def train_main(argv: Sequence[str] | argparse.Namespace | None = None) -> int:
    args = argv if isinstance(argv, argparse.Namespace) else build_parser().parse_args(argv)
    out = Console(width=None if sys.stdout.isatty() else 160)
    err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
    try:
        settings = load_settings(getattr(args, "config", None))
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        return 2
    registry = Registry(args.models_dir or settings.models_dir)
    if args.shadow and (args.promote_new or args.no_register):
        err.print("[red]error:[/red] --shadow cannot be combined with --promote-new or --no-register")
        return 2
    done = _registry_command(args, registry, out, err)
    if done is not None:
        return done
    symbols = args.symbols or list(settings.symbols)
    cfg = _train_config(args, settings)
    with tempfile.TemporaryDirectory(prefix="qe-train-") as tmp:
        root, source = _training_data(args, settings, symbols, Path(tmp), err)
        try:
            features = dataset.load_features(root, symbols, cfg.features)
        except (FileNotFoundError, ValueError) as exc:
            err.print(f"[red]error:[/red] {exc}")
            return 2
        source.update(dataset.span(features))
        results, failures = _train_all(features, cfg, settings, root, source, registry, args, err)
    _summary(results, out, registered=not args.no_register, promote=args.promote_new)
    for f in failures:
        err.print(f"[red]error:[/red] {f}")
    return 1 if failures else 0


def _registry_command(args: argparse.Namespace, registry: Registry, out: Console, err: Console) -> int | None:
    """--list and --promote act on the registry alone: their exit code, or None when it is a training run."""
    try:
        if args.list:
            print_registry(registry, out)
            return 0
        if args.promote:
            symbol, horizon, version = args.promote
            entry = registry.promote(symbol, int(horizon), version)
            out.print(
                f"promoted {entry.symbol} h{entry.horizon} {entry.version} ({entry.path}, sha256 {entry.sha256[:12]})"
            )
            return 0
    except RegistryError as exc:
        err.print(f"[red]error:[/red] {exc}")
        return 2
    return None


def _train_config(args: argparse.Namespace, settings: Settings) -> TrainConfig:
    # Barriers and fees from the settings the services run on, so labels price trades as they will be traded.
    return TrainConfig(
        barriers=Barriers.from_settings(settings),
        horizons=tuple(args.horizons),
        folds=args.folds,
        holdout_fraction=args.holdout_fraction,
        params=ModelParams(
            n_estimators=args.n_estimators,
            max_depth=args.max_depth,
            learning_rate=args.learning_rate,
            min_child_weight=args.min_child_weight,
            seed=args.seed,
        ),
        features=FeatureConfig(),
        gate=gate.GateConfig(min_trades=args.min_trades),
        max_parity=args.max_parity,
    )


def _training_data(
    args: argparse.Namespace, settings: Settings, symbols: list[str], tmp: Path, err: Console
) -> tuple[Path, dict]:
    """(recording root, data_source of the manifest): a synthetic market written under `tmp` (or
    --keep-data), or the recordings given."""
    if args.synthetic_steps:
        root = args.keep_data or tmp / "recordings"
        edge = settings.ingest.synthetic_edge_bps_per_s if args.synthetic_edge is None else args.synthetic_edge
        err.print(f"generating {args.synthetic_steps:,} s of the synthetic market (seed {args.synthetic_seed})")
        write_synthetic_recording(root, symbols, args.synthetic_steps, seed=args.synthetic_seed, edge_bps_per_s=edge)
        source: dict = {"kind": "synthetic", "seed": args.synthetic_seed, "steps": args.synthetic_steps}
        source["edge_bps_per_s"] = edge
        return root, source
    root = args.data or Path(settings.data_dir) / "recordings"
    return root, {"kind": "recording", "path": str(root)}


def _train_all(features, cfg: TrainConfig, settings, root: Path, source: dict, registry: Registry, args, err):
    schema = make_schema(cfg.features)

    def backtest(entry, onnx: bytes, hold_start: int) -> dict:
        def events(symbol: str, from_ns: int):
            return dataset.recording_events(root, symbol, from_ns)

        return gate.holdout_backtest(settings, events, entry, onnx, schema.size, hold_start, cfg.gate)

    results: list[TrainResult] = []
    failures: list[str] = []
    for symbol in symbols_of(features):
        feats = features[symbol]
        fp = dataset.fingerprint(feats, schema.hash)
        for h in cfg.horizons:
            try:
                res = train_one(feats, h, cfg, fp, source, backtest, step=lambda msg: err.print(msg))
                err.print(
                    f"{symbol} h{h}: ONNX vs XGBoost max |dp| = {res.parity_max_abs_diff:.3e} on "
                    f"{len(res.holdout_x)} held-out rows"
                )
                if not args.no_register:
                    register(res, registry, cfg, promote=args.promote_new, shadow=args.shadow)
                results.append(res)
                for why in res.gate["failures"]:
                    err.print(f"[yellow]gate refused {symbol} h{h}:[/yellow] {why}")
            except UnlearnableError as exc:
                err.print(f"[yellow]gate refused {symbol} h{h}:[/yellow] {exc}")
            except (TrainingError, RegistryError) as exc:
                failures.append(str(exc))
                err.print(f"[red]refused:[/red] {exc}")
    return results, failures


def symbols_of(features: dict) -> list[str]:
    return sorted(features)


def _summary(results: list[TrainResult], console: Console, registered: bool, promote: bool) -> None:
    table = Table(title="trained models" + ("" if registered else " (not registered)"))
    cols = ("symbol", "h (min)", "version", "gate", "log loss (base)", "Brier (base)", "ECE", "held-out trades")
    for col in (*cols, "expectancy bps (95% low)"):
        table.add_column(col)
    for r in results:
        f = r.gate["figures"]
        state = "passed" + (" (promoted)" if promote and r.entry else "") if r.passed else "REFUSED"
        table.add_row(
            r.symbol,
            str(r.horizon),
            r.entry.version if r.entry else "-",
            state,
            f"{f['oos_log_loss']:.4f} ({f['oos_base_log_loss']:.4f})",
            f"{f['oos_brier']:.4f} ({f['oos_base_brier']:.4f})",
            f"{f['oos_ece']:.3f}",
            str(int(f.get("holdout_trades", 0))),
            f"{f.get('holdout_expectancy_bps', 0.0):+.2f} ({f.get('holdout_expectancy_lcb_bps', -math.inf):+.2f})",
        )
    console.print(table)


def print_registry(registry: Registry, console: Console) -> None:
    doc = registry.load()
    promoted = doc.get("promoted", {})
    table = Table(title=f"model registry {registry.root}")
    for col in ("symbol", "h (min)", "version", "promoted", "shadow", "gate", "created", "source", "sha256", "schema"):
        table.add_column(col)
    for e in registry.entries(doc):
        table.add_row(
            e.symbol,
            str(e.horizon),
            e.version,
            "yes" if promoted.get(e.symbol, {}).get(str(e.horizon)) == e.version else "",
            "yes" if registry.shadow_version(e.symbol, e.horizon, doc) == e.version else "",
            "passed" if (e.gate or {}).get("passed") is True else "; ".join((e.gate or {}).get("failures", ["-"])),
            e.created_at,
            describe_source(e.data_source),
            e.sha256[:12],
            e.feature_schema_hash[:12],
        )
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(train_main())

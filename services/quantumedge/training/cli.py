"""`quantumedge train`: train, validate, export and register models; promote a version; list the registry.

quantumedge train --synthetic-steps 120000 --promote-new        # the shipped defaults
quantumedge train --data var/recordings --symbols BTCUSDT       # from recorded files
quantumedge train --promote BTCUSDT 5 v3                        # serve another version
quantumedge train --list
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from quantumedge.inference.features import FeatureConfig, make_schema
from quantumedge.inference.registry import Registry, RegistryError
from quantumedge.training import dataset
from quantumedge.training.model import ModelParams
from quantumedge.training.pipeline import DEFAULT_HORIZONS, TrainConfig, TrainingError, register, train_one
from quantumedge.training.synthetic_data import write_synthetic_recording


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    src = p.add_argument_group("data")
    src.add_argument("--data", type=Path, help="recording root (root/symbol=SYM/...); default <data_dir>/recordings")
    src.add_argument(
        "--synthetic-steps",
        type=int,
        metavar="N",
        help="generate N steps of the synthetic market into a temporary recording and train on it",
    )
    src.add_argument("--synthetic-seed", type=int, default=7, help="seed of the synthetic market (default 7)")
    src.add_argument("--keep-data", type=Path, metavar="DIR", help="write the synthetic recording here and keep it")
    src.add_argument("--symbols", nargs="+", metavar="SYMBOL", help="symbols to train (default: settings.symbols)")

    lab = p.add_argument_group("labels and validation")
    lab.add_argument(
        "--horizons",
        nargs="+",
        type=int,
        default=list(DEFAULT_HORIZONS),
        metavar="H",
        help="horizons in feature rows (default 1 5 30)",
    )
    lab.add_argument(
        "--dead-band-bps",
        type=float,
        default=0.0,
        help="rows whose |return| over the horizon is <= this are dropped (default 0: unchanged mid)",
    )
    lab.add_argument("--folds", type=int, default=4, help="walk-forward folds (default 4)")
    lab.add_argument(
        "--purge",
        type=int,
        default=None,
        metavar="ROWS",
        help="gap between training labels and each test block (default: horizon + feature warm-up)",
    )
    lab.add_argument(
        "--max-parity",
        type=float,
        default=1e-5,
        help="refuse to register when ONNX and XGBoost differ by more (default 1e-5)",
    )

    mdl = p.add_argument_group("model")
    mdl.add_argument("--seed", type=int, default=7, help="training seed (default 7)")
    mdl.add_argument("--n-estimators", type=int, default=ModelParams.n_estimators)
    mdl.add_argument("--max-depth", type=int, default=ModelParams.max_depth)
    mdl.add_argument("--learning-rate", type=float, default=ModelParams.learning_rate)
    mdl.add_argument("--min-child-weight", type=float, default=ModelParams.min_child_weight)

    reg = p.add_argument_group("registry")
    reg.add_argument("--models-dir", type=Path, help="registry root (default: settings.models_dir)")
    reg.add_argument("--promote-new", action="store_true", help="promote every newly registered version")
    reg.add_argument("--no-register", action="store_true", help="train and report only; write nothing")
    reg.add_argument(
        "--promote", nargs=3, metavar=("SYMBOL", "HORIZON", "VERSION"), help="promote an existing version (no training)"
    )
    reg.add_argument("--list", action="store_true", help="print the registry and exit")
    return p


def build_parser() -> argparse.ArgumentParser:
    return add_arguments(
        argparse.ArgumentParser(prog="quantumedge train", description="Train, register and promote the models.")
    )


def _settings_default(attr: str):
    from quantumedge.shared.config import load_settings

    return getattr(load_settings(), attr)


def train_main(argv: Sequence[str] | argparse.Namespace | None = None) -> int:
    args = argv if isinstance(argv, argparse.Namespace) else build_parser().parse_args(argv)
    out = Console(width=None if sys.stdout.isatty() else 140)
    err = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
    models_dir = args.models_dir or _settings_default("models_dir")
    registry = Registry(models_dir)
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

    symbols = args.symbols or list(_settings_default("symbols"))
    cfg = TrainConfig(
        horizons=tuple(args.horizons),
        dead_band_bps=args.dead_band_bps,
        folds=args.folds,
        purge=args.purge,
        params=ModelParams(
            n_estimators=args.n_estimators,
            max_depth=args.max_depth,
            learning_rate=args.learning_rate,
            min_child_weight=args.min_child_weight,
            seed=args.seed,
        ),
        features=FeatureConfig(),
        max_parity=args.max_parity,
    )
    schema = make_schema(cfg.features)
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="qe-train-") as tmp, _progress(err) as progress:
        if args.synthetic_steps:
            root = args.keep_data or Path(tmp) / "recordings"
            task = progress.add_task("synthetic market", total=args.synthetic_steps)
            write_synthetic_recording(
                root,
                symbols,
                args.synthetic_steps,
                seed=args.synthetic_seed,
                progress=lambda n: progress.advance(task, n),
            )
            progress.update(task, completed=args.synthetic_steps)
        else:
            root = args.data or Path(_settings_default("data_dir")) / "recordings"
        try:
            features = dataset.load_features(root, symbols, cfg.features)
        except (FileNotFoundError, ValueError) as exc:
            err.print(f"[red]error:[/red] {exc}")
            return 2
        results = []
        for symbol in symbols:
            feats = features[symbol]
            fp = dataset.fingerprint(feats, schema.hash)
            for h in cfg.horizons:
                task = progress.add_task(f"{symbol} h{h}", total=cfg.folds + 1)
                try:
                    res = train_one(feats, h, cfg, fp, step=lambda msg, t=task: _step(progress, t, msg))
                    progress.console.print(
                        f"{symbol} h{h}: ONNX vs XGBoost max |dp| = {res.parity_max_abs_diff:.3e} on "
                        f"{len(res.holdout_x)} held-out rows"
                    )
                    if not args.no_register:
                        register(res, registry, cfg, promote=args.promote_new)
                    results.append(res)
                except (TrainingError, RegistryError) as exc:
                    failures.append(str(exc))
                    progress.console.print(f"[red]refused:[/red] {exc}")
                progress.update(task, completed=cfg.folds + 1)
    _summary(results, out, registered=not args.no_register, promoted=args.promote_new)
    for f in failures:
        err.print(f"[red]error:[/red] {f}")
    return 1 if failures else 0


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _step(progress: Progress, task, msg: str) -> None:
    if " fold " in msg or "calibrated" in msg:
        progress.advance(task)


def _summary(results, console: Console, registered: bool, promoted: bool) -> None:
    table = Table(title="trained models" + ("" if registered else " (not registered)"))
    for col in ("symbol", "h", "version", "AUC (folds)", "holdout AUC", "log loss", "Brier", "max |dp|", "bytes"):
        table.add_column(col)
    for r in results:
        cal = r.metrics["holdout"]["calibrated"]
        table.add_row(
            r.symbol,
            str(r.horizon),
            (r.entry.version + (" (promoted)" if promoted else "")) if r.entry else "-",
            f"{r.metrics['mean']['auc']:.4f}",
            f"{cal['auc']:.4f}",
            f"{cal['log_loss']:.4f}",
            f"{cal['brier']:.4f}",
            f"{r.parity_max_abs_diff:.2e}",
            str(len(r.onnx)),
        )
    console.print(table)


def print_registry(registry: Registry, console: Console) -> None:
    doc = registry.load()
    promoted = doc.get("promoted", {})
    table = Table(title=f"model registry {registry.root}")
    for col in ("symbol", "h", "version", "promoted", "created", "AUC", "sha256", "schema"):
        table.add_column(col)
    for e in registry.entries(doc):
        table.add_row(
            e.symbol,
            str(e.horizon),
            e.version,
            "yes" if promoted.get(e.symbol, {}).get(str(e.horizon)) == e.version else "",
            e.created_at,
            f"{e.metrics.get('mean', {}).get('auc', float('nan')):.4f}",
            e.sha256[:12],
            e.feature_schema_hash[:12],
        )
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(train_main())

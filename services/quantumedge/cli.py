"""The `quantumedge` console script.

up       all four services in one process on the embedded defaults
serve    one service against Kafka (the platform's command)
train    build datasets from recordings, train, export to ONNX, register
backtest run the shared domain code over recordings
record   record a market source to Parquet files
secrets  bootstrap, check and rotate Vault secrets (non-interactive)
topics   create the Kafka topics
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from quantumedge.shared.config import SERVICE_NAMES, ConfigError, load_settings
from quantumedge.shared.logs import setup_logging

# Commands whose arguments belong to their own module (each has its own --help).
DELEGATED = {
    "train": ("quantumedge.training.cli", "train_main", "train models from recordings and register them"),
    "backtest": ("quantumedge.backtest.cli", "backtest_main", "replay recordings through the domain code"),
    "record": ("quantumedge.ingest.record_cli", "record_main", "record a market source to Parquet files"),
    "secrets": ("quantumedge.secrets.cli", "secrets_main", "init, check or rotate secrets in Vault"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quantumedge", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="optional YAML configuration file (QE_ env vars override it)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = sub.add_parser("up", help="all four services in one process on the in-process bus (no Kafka, no Vault)")
    up.add_argument(
        "--steps",
        type=int,
        default=3600,
        help="synthetic market steps (one second of market each) before the run ends by itself; 0 = until Ctrl-C",
    )

    serve = sub.add_parser("serve", help="run one service against Kafka until SIGTERM")
    serve.add_argument("service", choices=SERVICE_NAMES)

    sub.add_parser("topics", help="create the system's Kafka topics when missing (idempotent)")

    for name, (_, _, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    # Delegated commands parse their own arguments (and answer their own --help).
    head = [a for a in argv if not a.startswith("-")][:1]
    if head and head[0] in DELEGATED:
        idx = argv.index(head[0])
        module, func, _ = DELEGATED[head[0]]
        return int(getattr(importlib.import_module(module), func)(argv[idx + 1 :]) or 0)

    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"quantumedge: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, service=getattr(args, "service", "quantumedge"))

    if args.command == "up":
        from quantumedge.embedded import run_up

        summary = run_up(settings, steps=args.steps)
        return 0 if summary.ticks > 0 else 1
    if args.command == "serve":
        return _serve(args.service, settings)
    if args.command == "topics":
        from quantumedge.shared.bus import make_bus

        bus = make_bus(settings.model_copy(update={"bus": "kafka"}))
        bus.ensure_topics()
        bus.close()
        return 0
    parser.error(f"unknown command {args.command}")
    return 2


def _serve(name: str, settings: object) -> int:
    from quantumedge.shared.runner import install_signal_handlers, serve_forever, start

    try:
        running = start([name], settings)  # type: ignore[arg-type]
    except RuntimeError as exc:
        # A missing model, secret or broker stops this service with a message naming what is missing.
        print(f"quantumedge serve {name}: {exc}", file=sys.stderr)
        return 2
    install_signal_handlers(running.stop_event)
    try:
        serve_forever(running)
    finally:
        healthy = all(s.healthy() for s in running.services.values())
        running.stop()
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())

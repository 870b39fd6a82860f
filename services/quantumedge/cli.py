"""The `quantumedge` console script.

up       all four services in one process on the embedded defaults
serve    one service against Kafka (the platform's command)
train    build datasets from recordings, train, export to ONNX, register
backtest run the shared domain code over recordings
record   record a market source to Parquet files
secrets  bootstrap, check and rotate Vault secrets (non-interactive)
topics   create the Kafka topics and manage the services' ACLs
console  the operators' web console
notify   send halts, limit breaches, fills and rejections to webhooks and Telegram
status, halt, reduce, activate, resume, flatten, cancel-all, limits, decisions, explain: operate a running system
health   ask a service's gRPC health (exit 0 when SERVING; the chart's helm test hook)
"""

from __future__ import annotations

import argparse
import importlib
import sys
import threading
from collections.abc import Sequence

from quantumedge.ops.commands import COMMANDS as OPS_COMMANDS
from quantumedge.ops.commands import add_parsers as add_ops_parsers
from quantumedge.settings import load_settings
from quantumedge.shared.config import SERVICE_NAMES, ConfigError
from quantumedge.shared.errors import OperatorError, one_line
from quantumedge.shared.logs import setup_logging

# Commands whose arguments belong to their own module (each has its own --help).
DELEGATED = {
    "train": ("quantumedge.training.cli", "train_main", "train models from recordings and register them"),
    "models": (
        "quantumedge.training.shadow_cli",
        "models_main",
        "shadow models: mark, compare with the promoted one, promote or discard",
    ),
    "backtest": ("quantumedge.backtest.cli", "backtest_main", "replay recordings through the domain code"),
    "record": ("quantumedge.record_cli", "record_main", "record a market source to Parquet files"),
    "secrets": ("quantumedge.secrets_cli", "secrets_main", "init, check or rotate secrets in Vault"),
    "topics": ("quantumedge.topics_cli", "topics_main", "create the Kafka topics; apply, check or print the ACLs"),
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
    up.add_argument(
        "--source",
        choices=("synthetic", "binance", "capture"),
        default="synthetic",
        help="market data: the synthetic market (default), Binance's public streams (no key; until Ctrl-C), "
        "or raw captures (--capture)",
    )
    up.add_argument("--capture", default="", help="capture file(s) (comma-separated) or folder for --source capture")
    up.add_argument(
        "--observe",
        action="store_true",
        help="observe-only: signals and decisions, each approved one reported with a hypothetical fill; "
        "nothing is sent to any venue",
    )
    up.add_argument("--journal", default="", help="folder to write every signal, decision and report to (JSON lines)")

    serve = sub.add_parser("serve", help="run one service against Kafka until SIGTERM")
    serve.add_argument("service", choices=SERVICE_NAMES)

    health = sub.add_parser("health", help="ask a gRPC server's health service; exit 0 when it answers SERVING")
    health.add_argument("address", help="host:port of the server, e.g. quantumedge-risk:50053")
    health.add_argument("--service", default="", help="service to ask about, e.g. quantumedge.v1.RiskService")
    health.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an answer (default 5)")
    sub.add_parser("console", help="the operators' web console (login with the operator token)")
    sub.add_parser("notify", help="notifications of halts, limit breaches, fills and rejections (webhooks, Telegram)")
    add_ops_parsers(sub)

    for name, (_, _, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def split_global(argv: list[str]) -> tuple[str | None, list[str]]:
    """`--config FILE` may come before the command (also for delegated ones): take it out of argv."""
    config, rest, i = None, [], 0
    while i < len(argv):
        arg = argv[i]
        if rest and not rest[0].startswith("-"):
            rest.extend(argv[i:])
            break
        if arg == "--config" and i + 1 < len(argv):
            config, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--config="):
            config, i = arg.split("=", 1)[1], i + 1
            continue
        rest.append(arg)
        i += 1
    return config, rest


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    config, argv = split_global(argv)
    command = argv[0] if argv and not argv[0].startswith("-") else ""
    try:
        return _dispatch(command, config, argv)
    except (OperatorError, ConfigError) as exc:
        # One line naming what is missing or in the way and the setting to change; never a traceback.
        print(f"quantumedge{' ' + command if command else ''}: {one_line(exc)}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)


def _dispatch(command: str, config: str | None, argv: list[str]) -> int:
    if config is not None:
        from pathlib import Path

        if not Path(config).is_file():
            raise ConfigError(f"configuration file not found: {config} (--config / QE_CONFIG_FILE)")
    if command in DELEGATED:
        # Delegated commands parse their own arguments (and answer their own --help); a global --config
        # reaches them as QE_CONFIG_FILE, which every load_settings() reads.
        if config is not None:
            import os

            os.environ["QE_CONFIG_FILE"] = config
        module, func, _ = DELEGATED[command]
        try:
            entry = getattr(importlib.import_module(module), func)
        except ModuleNotFoundError as exc:
            if (exc.name or "quantumedge").startswith("quantumedge"):
                raise
            # The image installs the serving dependencies only: name the missing library, never a traceback.
            raise OperatorError(
                f"needs the Python package {exc.name!r}, which this installation lacks: "
                "install the train extra (pip install 'quantumedge[train]'); the image carries serving only",
                reason="missing_dependency",
            ) from exc
        return int(entry(argv[1:]) or 0)
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "health":  # needs no settings: it only asks another server
        return _health(args.address, args.service, args.timeout)
    settings = load_settings(config)
    setup_logging(settings.log_level, service=getattr(args, "service", "quantumedge"))
    _quiet_clients(settings)
    if args.command == "up":
        from quantumedge.embedded import UpOptions, run_up

        options = UpOptions(args.source, args.capture, args.observe, args.journal)
        summary = run_up(settings, steps=args.steps, options=options)
        return 0 if summary.ticks > 0 else 1
    if args.command == "serve":
        return _serve(args.service, settings)
    if args.command == "console":
        from quantumedge.console.server import run_console

        return run_console(settings)
    if args.command == "notify":
        from quantumedge.notify.service import run_notify

        return run_notify(settings)
    if args.command in OPS_COMMANDS:
        from quantumedge.ops.commands import run

        return run(args.command, args, settings)
    parser.error(f"unknown command {args.command}")
    return 2


def _health(address: str, service: str, timeout_s: float) -> int:
    from quantumedge.shared.health_check import check

    answer = check(address, service, timeout_s=timeout_s)
    print(f"{address} {service or '(server)'}: {answer.status}")
    return 0 if answer.serving else 1


def _quiet_clients(settings: object) -> None:
    """kafka-python logs every connection attempt: its loggers stay at kafka.client_log_level (WARNING)."""
    import logging

    level = getattr(getattr(settings, "kafka", None), "client_log_level", "WARNING")
    logging.getLogger("kafka").setLevel(str(level).upper())


def _serve(name: str, settings: object) -> int:
    from quantumedge.runner import serve_forever, start
    from quantumedge.shared.process_signals import install_signal_handlers

    stop = threading.Event()
    install_signal_handlers(stop)  # before anything starts: a SIGTERM during start-up still drains
    try:
        running = start([name], settings, stop_event=stop)  # type: ignore[arg-type]
    except OperatorError:
        raise
    except RuntimeError as exc:
        # A missing model, secret or broker stops this service with a message naming what is missing.
        print(f"quantumedge serve {name}: {one_line(exc)}", file=sys.stderr)
        return 2
    try:
        serve_forever(running)
    finally:
        healthy = all(s.healthy() for s in running.services.values())
        running.stop()
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())

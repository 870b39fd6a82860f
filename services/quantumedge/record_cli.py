"""`quantumedge record`: record a market source straight to Parquet files (no Kafka, no gRPC).

Examples:
  quantumedge record --duration 3600                      # live Binance, the configured symbols
  quantumedge record --venue testnet --symbols BTCUSDT --max-events 10000
  quantumedge record --source synthetic --steps 20000 --out var/synthetic
  quantumedge record --source capture --capture /data/binance-spot/btcusdt_20240808.gz --out var/capture
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Sequence

from quantumedge.ingest.recorder import Recorder
from quantumedge.ingest.service import build_recorder, build_source, recordings_dir
from quantumedge.ingest.source import MarketSource
from quantumedge.settings import Settings, load_settings
from quantumedge.shared.config import ConfigError
from quantumedge.shared.errors import MarketUnreachableError, one_line
from quantumedge.shared.logs import get_logger, setup_logging
from quantumedge.v1 import market_pb2

log = get_logger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quantumedge record",
        description="Record a market source to partitioned, zstd-compressed Parquet files "
        "(root/symbol=SYM/date=YYYY-MM-DD/hour=HH/part-N.parquet), with the configured rotation and retention.",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="optional YAML configuration file (QE_ env vars override it)")
    parser.add_argument(
        "--source",
        choices=("binance", "replay", "synthetic", "capture"),
        help="market source (default: the configured ingest.source)",
    )
    parser.add_argument("--symbols", help="comma-separated symbols (default: the configured symbols)")
    parser.add_argument("--venue", choices=("live", "testnet"), help="Binance venue (default: ingest.venue)")
    parser.add_argument("--out", help="recording root (default: ingest.record_dir or <data_dir>/recordings)")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = no limit)")
    parser.add_argument("--max-events", type=int, default=0, help="stop after this many events (0 = no limit)")
    parser.add_argument(
        "--capture",
        help="capture source: raw Binance capture file(s) or folder(s), comma-separated (`<recv ns> <frame>` lines)",
    )
    parser.add_argument("--steps", type=int, help="synthetic source: steps to generate")
    parser.add_argument(
        "--first-event-timeout",
        type=float,
        default=30.0,
        help="give up (exit 1) when the source has produced no event after this many seconds (0 = wait forever)",
    )
    parser.add_argument("--speed", type=float, help="replay/synthetic pacing: 0 = as fast as possible, 1 = real time")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    ingest: dict[str, object] = {"record": True}
    if args.source:
        ingest["source"] = args.source
    if args.venue:
        ingest["venue"] = args.venue
    if args.out:
        ingest["record_dir"] = args.out
    if args.capture:
        ingest["capture_path"] = args.capture
        ingest.setdefault("source", "capture")
    if args.steps is not None:
        ingest["synthetic_steps"] = args.steps
    if args.speed is not None:
        ingest["replay_speed"] = args.speed
        ingest["synthetic_speed"] = args.speed
        ingest["capture_speed"] = args.speed
    update: dict[str, object] = {"ingest": settings.ingest.model_copy(update=ingest)}
    if args.symbols:
        update["symbols"] = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    return settings.model_copy(update=update)


def record_main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    ready = _prepare(args)
    if isinstance(ready, int):
        return ready
    settings, source = ready
    recorder = build_recorder(settings).start()
    recording = _Recording(recorder, args.max_events)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, recording.on_signal)
        signal.signal(signal.SIGTERM, recording.on_signal)
    started = time.monotonic()
    recording.drive(source, settings, started, args.duration, args.first_event_timeout)
    recorder.stop()
    elapsed = time.monotonic() - started
    stats = recorder.stats
    print(
        f"recorded {stats.recorded} events from {source.name} in {elapsed:.1f} s to {recorder.root} "
        f"({stats.files_closed} files, {stats.bytes_closed / 1e6:.2f} MB, {stats.dropped} dropped)"
    )
    failure = recording.failure
    if not failure and stats.recorded == 0 and settings.ingest.source == "binance":
        failure.append(_silent(settings, elapsed))
    if failure:
        print(f"quantumedge record: {one_line(failure[0])}", file=sys.stderr)
        return 1
    return 0


def _prepare(args: argparse.Namespace) -> tuple[Settings, MarketSource] | int:
    """(settings, market source), or the exit code 2 after one line saying what is wrong with the input."""
    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"quantumedge record: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, service="record")
    if settings.ingest.source == "replay" and recordings_dir(settings, settings.ingest.replay_path) == recordings_dir(
        settings, settings.ingest.record_dir
    ):
        print("quantumedge record: replaying into the folder being replayed; pass --out elsewhere", file=sys.stderr)
        return 2
    try:
        source = build_source(settings)
    except (ValueError, ImportError) as exc:
        print(f"quantumedge record: {exc}", file=sys.stderr)
        return 2
    return settings, source


class _Recording:
    """A source feeding the recorder on its own thread until a limit, a signal or the source's end.

    The source runs on a thread so the main thread can watch the clock (duration, first-event timeout) and
    take signals; whatever the source raised is kept in `failure` for the exit line."""

    def __init__(self, recorder: Recorder, max_events: int) -> None:
        self.recorder = recorder
        self.max_events = max_events
        self.stop = threading.Event()
        self.count = 0
        self.failure: list[BaseException] = []

    def emit(self, event: market_pb2.MarketEvent) -> None:
        self.recorder.record(event)
        self.count += 1
        if self.max_events and self.count >= self.max_events:
            self.stop.set()

    def on_signal(self, signum: int, _frame: object) -> None:
        self.stop.set()

    def _run(self, source: MarketSource) -> None:
        try:
            source.run(self.emit, self.stop)
        except BaseException as exc:
            self.failure.append(exc)

    def drive(
        self, source: MarketSource, settings: Settings, started: float, duration: float, first_event_timeout: float
    ) -> None:
        thread = threading.Thread(target=self._run, args=(source,), name="record-source", daemon=True)
        thread.start()
        deadline = started + duration if duration > 0 else None
        silent_after = started + first_event_timeout if first_event_timeout > 0 else None
        while thread.is_alive() and not self.stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            if self.count == 0 and silent_after is not None and time.monotonic() >= silent_after:
                self.failure.append(_silent(settings, first_event_timeout))
                break
            thread.join(0.2)
        self.stop.set()
        thread.join(30)


def _silent(settings: Settings, waited_s: float) -> MarketUnreachableError:
    """No event at all: name where the source was reading from and what moves it."""
    ing = settings.ingest
    if ing.source == "binance":
        where = ing.binance_ws_url or f"Binance {ing.venue}"
        fix = "check the network, or set QE_BINANCE_WS_URL / --venue"
    else:
        where, fix = ing.source, "check --source and its input (--capture, --out, QE_INGEST__*)"
    return MarketUnreachableError(
        f"no market event from {where} in {waited_s:.0f} s; {fix}", setting="QE_BINANCE_WS_URL"
    )


if __name__ == "__main__":
    raise SystemExit(record_main())

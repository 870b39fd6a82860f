"""`make bench-compare`: QuantumEdge's backtest (full ML path) and hftbacktest on the same real capture.

    python -m bench.compare HBT_PYTHON

One recording (BTCUSDT of the real Binance captures, read in place: $QE_TEST_BINANCE_CAPTURES or the
project's shared/data/binance-spot, found as the tests find it) is converted for each engine: into
hftbacktest's event array (.cache/bench-compare/, numpy only) and through QuantumEdge's capture replay
(the live parser and book sync) into market events. hftbacktest runs in its own venv (HBT_PYTHON) on the
converted file; QuantumEdge runs here on the shipped, promoted models. Both runs are timed in CPU seconds
(time.process_time) of the run alone: loading, converting and numba's JIT warm-up are printed apart.

Counting: a row of hftbacktest's array is one price level (or one trade) while a QuantumEdge event is a whole
depth diff, top of book or trade, so "rows" and "events" are not the same unit. The headline is capture
frames consumed per CPU-second: the one unit both engines share (each gets every frame it can use:
hftbacktest the snapshot, depth diffs and trades; QuantumEdge those and the bookTicker frames too).

Like-for-like: hftbacktest runs with the paper venue's own latencies, fees, tick and lot (bench/compare/spec.py)
and a risk-averse queue model, reads book and trades on every feed event, and sends about as many IOC market
orders as QuantumEdge filled on the same capture. What still differs is printed with the figures."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from bench.backtest_bench import promoted_settings  # noqa: E402
from bench.backtest_speed import cpu  # noqa: E402
from bench.compare.convert import convert_file  # noqa: E402
from bench.compare.spec import converted_frames, hbt_spec, per_cpu_s  # noqa: E402
from quantumedge.backtest.cli import load_backtest_models  # noqa: E402
from quantumedge.backtest.simulation import Backtest  # noqa: E402
from quantumedge.ingest.capture import CaptureSource  # noqa: E402
from tests.support.captures import CAPTURE_ENV, find_capture_dir, load_capture  # noqa: E402

SYMBOL = "BTCUSDT"
CACHE = ROOT / ".cache" / "bench-compare"
ORDER_QTY = 0.001  # BTC per hftbacktest market order (above the 5 USDT minimum notional)


def converted(capture: Path) -> tuple[Path, int]:
    """The capture as hftbacktest's event file (cached by size and mtime) and the frames it holds."""
    stat = capture.stat()
    events = CACHE / f"{capture.name}.{stat.st_size}.{int(stat.st_mtime)}.npy"
    meta = events.with_suffix(".frames.json")
    if not (events.exists() and meta.exists()):
        conv, took = cpu(lambda: convert_file(capture, events))
        meta.write_text(json.dumps({"frames": conv.frames, "dropped_diffs": conv.dropped_diffs}))
        print(
            f"  converted {capture.name} for hftbacktest: {len(conv.events):,} rows from {conv.frames} "
            f"({conv.dropped_diffs} diffs before the snapshot dropped) in {took:.2f} CPU-s -> {events}"
        )
    info = json.loads(meta.read_text())
    return events, converted_frames(info["frames"], info["dropped_diffs"])


def run_hftbacktest(python: str, capture: Path, spec: dict) -> dict:
    """Run hftbacktest's side in its own venv on the converted capture."""
    events, frames = converted(capture)
    out = CACHE / "hftbacktest-result.json"
    out.unlink(missing_ok=True)
    script = str(ROOT / "bench" / "compare" / "hbt_run.py")
    subprocess.run(
        [python, "-W", "ignore::DeprecationWarning", script, str(events), str(out), json.dumps(spec)], check=True
    )
    figures = json.loads(out.read_text())
    for run in figures.values():
        run["frames"] = frames
    return figures


def run_quantumedge(capture: Path) -> tuple[dict, object]:
    """The capture through the live parser into events, then the backtest with the promoted models."""
    logging.getLogger("quantumedge").setLevel(logging.ERROR)
    settings = promoted_settings()
    settings = settings.model_copy(update={"symbols": [SYMBOL]})
    models = load_backtest_models(settings, allow_missing=False, console=Console(stderr=True))
    source = CaptureSource(capture, [SYMBOL])
    events, load_s = cpu(lambda: list(source.events()))
    result, took = cpu(lambda: Backtest(settings, models).run(events))
    if not result.events:
        raise RuntimeError("the QuantumEdge backtest ran no events: nothing to time")
    status = result.execution_status
    figures = {
        "rows": result.events,
        "cpu_s": took,
        "load_cpu_s": load_s,
        "frames": source.frames,
        "signals": result.signals,
        "orders": int(status.orders_placed) if status else 0,
        "fills": int(status.fills) if status else 0,
        "states": [f"{t.symbol}:{t.reason_code}" for t in status.trading_states] if status else [],
    }
    return figures, settings.execution


def hbt_line(name: str, run: dict) -> None:
    print(
        f"  hftbacktest {name}: {run['frames']:,} frames ({run['rows']:,} rows, {run['ticks']:,} feed wake-ups, "
        f"{run['orders']:,} IOC market orders every {run['every']} wake-ups, {run['fills']:,} fills) in "
        f"{run['cpu_s']:.3f} CPU-s = {per_cpu_s(run['frames'], run['cpu_s']):,.0f} frames/CPU-s, "
        f"{per_cpu_s(run['rows'], run['cpu_s']):,.0f} rows/CPU-s; JIT warm-up {run['warmup_cpu_s']:.2f} and "
        f"event ordering {run['prep_cpu_s']:.2f} CPU-s not counted"
    )


def report(hbt: dict, qe: dict, spec: dict) -> None:
    print(
        f"  venue model both sides: entry latency {spec['entry_ns'] / 1e6:g} ms, feed latency "
        f"{spec['feed_ns'] / 1e6:g} ms, fees maker {spec['maker_fee'] * 1e4:g} / taker {spec['taker_fee'] * 1e4:g} bp, "
        f"tick {spec['tick']:g}, lot {spec['lot']:g}; hftbacktest risk-averse queue model"
    )
    hbt_line("(venue model, book+trades every event)", hbt["modelled"])
    hbt_line("(lighter: mid only, every 10th, 1 ms, 1 bp, receive-time feed latency)", hbt["light"])
    print(
        f"  QuantumEdge (full ML path): {qe['frames']:,} frames ({qe['rows']:,} events, {qe['signals']:,} signals, "
        f"{qe['orders']:,} orders, {qe['fills']:,} fills) in {qe['cpu_s']:.2f} CPU-s = "
        f"{per_cpu_s(qe['frames'], qe['cpu_s']):,.0f} frames/CPU-s, {per_cpu_s(qe['rows'], qe['cpu_s']):,.0f} "
        f"events/CPU-s; capture replay {qe['load_cpu_s']:.2f} CPU-s not counted"
    )
    basis = "QuantumEdge's fills" if qe["fills"] else f"QuantumEdge's signals: it filled none, states {qe['states']}"
    print(f"  hftbacktest order target {spec['target_orders']:,} ({basis})")
    modelled = hbt["modelled"]
    ratio = per_cpu_s(qe["frames"], qe["cpu_s"]) / per_cpu_s(modelled["frames"], modelled["cpu_s"])
    print(
        f"  ratio QuantumEdge/hftbacktest, capture frames consumed per CPU-s (venue model): {ratio:.4f} "
        f"(target >= 1.0: {'MET' if ratio >= 1.0 else 'NOT met'}); QuantumEdge's frames include bookTicker, "
        f"hftbacktest's strategy is a fixed rule where QuantumEdge runs features, models, risk and paper execution"
    )


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m bench.compare HBT_PYTHON (make bench-compare sets it)")
        return 2
    capture = load_capture()
    if capture is None or SYMBOL not in capture.files:
        _, where = find_capture_dir()
        print(f"bench-compare: no {SYMBOL} capture at {where}; set {CAPTURE_ENV} to the folder holding it")
        return 1
    path = capture.path(SYMBOL)
    print(f"== bench-compare on {path} ({SYMBOL})")
    qe, venue = run_quantumedge(path)  # first: its fill count sets hftbacktest's order target
    # No fills (risk held the symbol, e.g. REDUCING on drift) would leave hftbacktest's order path idle: then
    # its target is QuantumEdge's signals, the decisions that went to risk, and the report says so.
    target = qe["fills"] or qe["signals"]
    spec = hbt_spec(venue, target, ORDER_QTY)
    hbt = run_hftbacktest(argv[1], path, spec)
    report(hbt, qe, spec)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

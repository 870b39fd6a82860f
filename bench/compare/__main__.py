"""`make bench-compare`: QuantumEdge's backtest (full ML path) and hftbacktest on the same real capture.

    python -m bench.compare HBT_PYTHON

One recording (BTCUSDT of the real Binance captures, read in place: $QE_TEST_BINANCE_CAPTURES or the
project's shared/data/binance-spot, found as the tests find it) is converted for each engine: into
hftbacktest's event array (.cache/bench-compare/, numpy only) and through QuantumEdge's capture replay
(the live parser and book sync) into market events. hftbacktest runs in its own venv (HBT_PYTHON) on the
converted file; QuantumEdge runs here on the shipped, promoted models. Both runs are timed in CPU seconds
(time.process_time) of the run alone: loading, converting and numba's JIT warm-up are printed apart.

An "event" is each engine's own unit: a row of hftbacktest's array (one price level, or one trade) and one
QuantumEdge market event (a depth update, top of book or trade). Both also get the capture frames they
consumed per CPU-second, the unit they share; the ratio is printed for both, as measured."""

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
from quantumedge.backtest.cli import load_backtest_models  # noqa: E402
from quantumedge.backtest.simulation import Backtest  # noqa: E402
from quantumedge.ingest.capture import CaptureSource  # noqa: E402
from tests.support.captures import CAPTURE_ENV, find_capture_dir, load_capture  # noqa: E402

SYMBOL = "BTCUSDT"
CACHE = ROOT / ".cache" / "bench-compare"
EVERY = 10  # hftbacktest's strategy decides on every 10th feed event


def run_hftbacktest(python: str, capture: Path) -> dict:
    """Convert the capture (cached by its size and mtime) and run hftbacktest's side in its own venv."""
    stat = capture.stat()
    events = CACHE / f"{capture.name}.{stat.st_size}.{int(stat.st_mtime)}.npy"
    if not events.exists():
        conv, took = cpu(lambda: convert_file(capture, events))
        print(
            f"  converted {capture.name} for hftbacktest: {len(conv.events):,} rows from {conv.frames} "
            f"({conv.dropped_diffs} diffs before the snapshot dropped) in {took:.2f} CPU-s -> {events}"
        )
    out = CACHE / "hftbacktest-result.json"
    out.unlink(missing_ok=True)
    cmd = [
        python,
        "-W",
        "ignore::DeprecationWarning",
        str(ROOT / "bench" / "compare" / "hbt_run.py"),
        str(events),
        str(out),
        str(EVERY),
    ]
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text())


def run_quantumedge(capture: Path) -> dict:
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
    return {
        "rows": result.events,
        "cpu_s": took,
        "load_cpu_s": load_s,
        "frames": source.frames,
        "signals": result.signals,
    }


def report(hbt: dict, qe: dict) -> None:
    hbt_frames = hbt["ticks"]
    print(
        f"  hftbacktest: {hbt['rows']:,} rows ({hbt_frames:,} feed events, {hbt['orders']:,} IOC market "
        f"orders, {hbt['fills']:,.0f} fills) in {hbt['cpu_s']:.3f} CPU-s = {hbt['rows'] / hbt['cpu_s']:,.0f} "
        f"rows/CPU-s; numba JIT warm-up {hbt['warmup_cpu_s']:.2f} CPU-s and event ordering "
        f"{hbt['prep_cpu_s']:.2f} CPU-s not counted"
    )
    print(
        f"  QuantumEdge (full ML path): {qe['rows']:,} events ({qe['frames']:,} frames, {qe['signals']:,} "
        f"signals) in {qe['cpu_s']:.2f} CPU-s = {qe['rows'] / qe['cpu_s']:,.0f} events/CPU-s; capture "
        f"replay {qe['load_cpu_s']:.2f} CPU-s not counted"
    )
    ratio = (qe["rows"] / qe["cpu_s"]) / (hbt["rows"] / hbt["cpu_s"])
    print(
        f"  ratio QuantumEdge/hftbacktest, events per CPU-s (each engine's own events): {ratio:.4f} "
        f"(target >= 1.0: {'MET' if ratio >= 1.0 else 'NOT met'})"
    )
    fratio = (qe["frames"] / qe["cpu_s"]) / (hbt_frames / hbt["cpu_s"])
    print(
        f"  ratio per capture frame consumed (QuantumEdge all {qe['frames']:,} frames, hftbacktest its "
        f"{hbt_frames:,} feed events: no bookTicker): {fratio:.4f}"
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
    hbt = run_hftbacktest(argv[1], path)
    qe = run_quantumedge(path)
    report(hbt, qe)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

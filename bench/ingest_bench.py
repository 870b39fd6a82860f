"""Ingest throughput: recorder writes, replay into the in-process bus and into Kafka, Binance frame normalising.

Figures printed (and returned by bench_ingest):
- recorder: events/s from record() to closed zstd Parquet files, file count and bytes (and bytes per event)
- replay -> memory bus: normalised events/s through IngestService (decode, publish, span, stats)
- replay -> Kafka: the same into a real broker, including the final flush (every record acked)
- binance normalise: websocket frames/s parsed, checked and turned into MarketEvents (no network)
- capture replay: the real Binance captures (read in place) through the same parser and book sync, events/s
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from quantumedge.ingest.binance.book import DepthDiff, DepthSnapshot
from quantumedge.ingest.binance.client import BinanceSource
from quantumedge.ingest.capture import CaptureSource
from quantumedge.ingest.recorder import Recorder
from quantumedge.ingest.replay import ReplaySource
from quantumedge.ingest.service import IngestService
from quantumedge.ingest.settings import IngestSettings
from quantumedge.ingest.synthetic import SyntheticMarket
from quantumedge.settings import Settings
from quantumedge.shared.bus import Bus, MemoryBus
from quantumedge.shared.config import KafkaSettings
from tests.support.captures import load_capture

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
STEPS = 12_000  # about 100k events of every kind (trades, top of book, depth with 10 levels a side)


def _record(root: Path) -> dict[str, float]:
    events = list(SyntheticMarket(SYMBOLS, seed=11, start_ns=time.time_ns()).events(STEPS))
    recorder = Recorder(root, batch_events=5_000, flush_s=60.0).start()
    t0 = time.perf_counter()
    for ev in events:
        recorder.record(ev)
    recorder.stop()
    elapsed = time.perf_counter() - t0
    files = sorted(root.rglob("*.parquet"))
    size = sum(f.stat().st_size for f in files)
    return {
        "events": len(events),
        "recorder_events_per_s": len(events) / elapsed,
        "recorder_files": len(files),
        "recorder_bytes": size,
        "recorder_bytes_per_event": size / max(len(events), 1),
        "recorder_dropped": recorder.stats.dropped,
    }


def _replay_into(bus: Bus, root: Path) -> tuple[float, int]:
    settings = Settings(bus="memory", symbols=SYMBOLS)
    service = IngestService(settings, bus, source=ReplaySource(root, SYMBOLS, speed=0))
    t0 = time.perf_counter()
    service.start()
    service.source_done.wait(600)
    bus.flush(120)
    elapsed = time.perf_counter() - t0
    service.stop()
    return service.published / elapsed, service.published


def _binance_normalise(n: int = 60_000) -> float:
    source = BinanceSource(IngestSettings(binance_ws_url="ws://127.0.0.1:1", depth_levels=10), ["BTCUSDT"])
    sync = source.feed.syncs["BTCUSDT"]
    frames: list[str] = []
    # Synchronise the book first (a buffered diff, then a snapshot that covers it), as the client would.
    update_id = 1001
    sync.on_diff(DepthDiff("BTCUSDT", update_id, update_id, [], []))
    levels = range(50)
    sync.on_snapshot(DepthSnapshot(update_id, [(100.0 - i, 1.0) for i in levels], [(101.0 + i, 1.0) for i in levels]))
    for i in range(n):
        if i % 3 == 0:
            data = {"e": "trade", "E": 1, "s": "BTCUSDT", "t": i // 3 + 1, "p": "100.5", "q": "0.1", "T": 1, "m": True}
            frames.append(json.dumps({"stream": "btcusdt@trade", "data": data}))
        elif i % 3 == 1:
            data = {"u": i, "s": "BTCUSDT", "b": "100.0", "B": "1.5", "a": "101.0", "A": "2.5"}
            frames.append(json.dumps({"stream": "btcusdt@bookTicker", "data": data}))
        else:
            update_id += 1
            data = _depth_json(update_id, i)
            frames.append(json.dumps({"stream": "btcusdt@depth@100ms", "data": data}))
    out: list = []
    source._emit = out.append
    feed = source.feed
    t0 = time.perf_counter()
    for frame in frames:
        feed.on_frame(frame, time.time_ns())
    elapsed = time.perf_counter() - t0
    assert len(out) == n, f"normalised {len(out)} of {n} frames"
    return n / elapsed


def _capture_replay() -> dict[str, float]:
    """The real captures through the live parser and book sync (read in place; skipped when absent)."""
    capture = load_capture()
    if capture is None:
        print("  ingest capture replay: skipped (no real captures; set QE_TEST_BINANCE_CAPTURES)")
        return {}
    source = CaptureSource(list(capture.files.values()))
    t0 = time.perf_counter()
    events = sum(1 for _ in source.events())
    elapsed = time.perf_counter() - t0
    return {"capture_replay_events_per_s": events / elapsed, "capture_replay_frames_per_s": source.frames / elapsed}


def _depth_json(update_id: int, i: int) -> dict:
    price = f"{100.0 - (i % 40):.2f}"
    return {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": update_id, "u": update_id, "b": [[price, "2.0"]], "a": []}


def bench_ingest(kafka_bootstrap: str | None) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="qe-ingest-bench-"))
    try:
        out: dict[str, float] = _record(root)
        out["replay_memory_events_per_s"], _ = _replay_into(MemoryBus(), root)
        if kafka_bootstrap:
            from quantumedge.shared.bus.kafka import KafkaBus

            bus = KafkaBus(
                KafkaSettings(
                    bootstrap=kafka_bootstrap, allow_plaintext=True, topic_prefix=f"bench-{uuid.uuid4().hex[:6]}."
                )
            )
            bus.ensure_topics()
            try:
                out["replay_kafka_events_per_s"], _ = _replay_into(bus, root)
            finally:
                bus.close()
        out["binance_normalise_frames_per_s"] = _binance_normalise()
        out.update(_capture_replay())
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for key, value in out.items():
        print(f"  ingest {key:<34} {value:>14,.1f}")
    return out


def main() -> int:
    import os

    bench_ingest(os.environ.get("QE_BENCH_KAFKA_BOOTSTRAP") or None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

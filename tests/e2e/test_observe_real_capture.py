"""Observe-only on the real Binance capture: `quantumedge up --source binance --observe`, end to end.

The local Binance market peer replays the capture live (tests/peers/binance_replay.py): in real time, with
every event time moved by one offset so the capture starts now, and its REST snapshot served at the point the
capture got it. So the live websocket client, the real parser, book sync, features, models and risk run on
real data exactly as on a live feed. Only the start of the capture is played: enough one-second rows for
the features' warm-up (120) and then some decided rows.
Execution is observe-only with its venue pointed at the local Binance trading peer: that peer must get no
request at all. Every signal and decision is in the run's journal, each approved decision has exactly one
observed report with a hypothetical fill at the touch (and no real fill), and the model report is printed.
The shipped models are synthetic-trained: they are allowed here explicitly (nothing trades), and the report
must say so.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import threading
from collections import Counter
from pathlib import Path

import grpc

from quantumedge.v1 import inference_pb2, inference_pb2_grpc
from tests.peers.binance_market import BinanceMarketPeer, wait_until
from tests.peers.binance_replay import replay_live
from tests.peers.binance_trading import BinanceTradingPeer
from tests.support.captures import Capture
from tests.support.procs import free_port, spawn, wait_serving

SERVICES = ("ingest", "inference", "risk", "execution")
# Seconds of the capture replayed: the features' warm-up (120 rows of 1 s) and then about 40 decided rows.
REPLAY_S = float(os.environ.get("QE_TEST_OBSERVE_REPLAY_S", "165"))


def _merged_lines(capture: Capture) -> list[tuple[int, str, str]]:
    """(receive ns, symbol, frame) of every capture line, merged by receive time."""
    out: list[tuple[int, str, str]] = []
    for symbol in capture.symbols:
        with gzip.open(capture.path(symbol), "rt") as fh:
            for line in fh:
                head, _, frame = line.rstrip("\n").partition(" ")
                out.append((int(head), symbol, frame))
    out.sort(key=lambda item: item[0])
    return out


def _inference_counts(port: int) -> tuple[int, int]:
    """(events seen, signals published); (-1, -1) while inference is too busy with the backlog to answer."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            status = inference_pb2_grpc.InferenceServiceStub(channel).GetStatus(
                inference_pb2.InferenceServiceGetStatusRequest(), timeout=30
            )
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
            return -1, -1
    return status.events_seen, status.signals_published


def _settled(port: int, history: list[tuple[int, int]]) -> bool:
    """Inference saw events and its counts stayed the same over the last three polls."""
    history.append(_inference_counts(port))
    return len(history) >= 3 and history[-1][0] > 0 and history[-1] == history[-2] == history[-3]


def _journal(folder: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (folder / name).read_text().splitlines() if line]


def test_observe_only_on_the_real_capture_sends_nothing_and_records_every_decision(
    binance_capture: Capture, tmp_path: Path
) -> None:
    lines = _merged_lines(binance_capture)
    symbols = binance_capture.symbols
    gates = {sym: threading.Event() for sym in symbols}
    ports = {name: free_port() for name in SERVICES}
    journal = tmp_path / "journal"
    log_path = tmp_path / "up.log"
    with BinanceMarketPeer(symbols) as market, BinanceTradingPeer(symbols) as venue:
        for sym in symbols:
            snapshot = next(json.loads(f) for _, s, f in lines if s == sym and f.startswith('{"lastUpdateId"'))
            market.serve_recorded_snapshot(sym, snapshot, gates[sym])
        env = {f"QE_PORTS__{n.upper()}": str(p) for n, p in ports.items()}
        env |= {
            "QE_GRPC_HOST": "127.0.0.1",
            "QE_DATA_DIR": str(tmp_path / "var"),
            "QE_BINANCE_WS_URL": market.ws_url,
            "QE_BINANCE_REST_URL": market.rest_url,
            # A configured testnet venue, at the trading peer: observe-only must never call it.
            "QE_EXECUTION__VENUE": "testnet",
            "QE_EXECUTION__REST_URL": venue.rest_url,
            "QE_EXECUTION__WS_API_URL": venue.ws_url,
            # The shipped models are synthetic-trained: allowed explicitly, since nothing trades.
            "QE_INFERENCE__ALLOW_SYNTHETIC_MODELS": "true",
        }
        proc = spawn(["up", "--source", "binance", "--observe", "--journal", str(journal)], env, log_path)
        try:
            for port in ports.values():
                wait_serving(port, timeout_s=240, proc=proc)
            wait_until(lambda: market.active_connections == 1, timeout_s=60, what="the live client to connect")
            replay = replay_live(market, lines, gates, seconds=REPLAY_S)
            history: list[tuple[int, int]] = []
            wait_until(lambda: _settled(ports["inference"], history), timeout_s=600, what="the pipeline to settle")
            proc.send_signal(signal.SIGINT)
            assert proc.wait(120) == 0, log_path.read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert venue.http_requests_total == 0 and venue.ws_connections_total == 0
        assert market.snapshot_requests >= len(symbols)
    assert replay.snapshots == len(symbols) and replay.frames > 20_000, replay

    out = log_path.read_text()
    assert "QuantumEdge model report: what will run" in out
    assert "execution mode: observe (nothing is sent to any venue)" in out
    assert "served on real market data (QE_INFERENCE__ALLOW_SYNTHETIC_MODELS=true)" in out
    manifest = json.loads((Path(__file__).resolve().parents[2] / "models" / "manifest.json").read_text())
    promoted = {(sym, int(h)): v for sym, by_h in manifest["promoted"].items() for h, v in by_h.items()}
    served = [m for m in manifest["models"] if promoted.get((m["symbol"], m["horizon"])) == m["version"]]
    assert served and all(m["sha256"][:16] in out for m in served if m["symbol"] in symbols)

    signals = _journal(journal, "signals.jsonl")
    decisions = _journal(journal, "decisions.jsonl")
    reports = _journal(journal, "reports.jsonl")
    assert signals, "no signal on the real capture"
    print(
        f"observe e2e: {replay.capture_seconds:.0f} s of capture, {replay.frames} frames, {len(signals)} signals, "
        f"{len(decisions)} decisions, {sum(1 for d in decisions if d.get('approved'))} approved, "
        f"{sum(1 for r in reports if r.get('observed'))} observed reports; decision reasons "
        f"{dict(Counter(r.split(':')[0] for d in decisions for r in d.get('reasons', [])))}"
    )
    # Every signal was decided, once, and every decision is recorded; a refusal says why (a reason code).
    assert all(d.get("approved") or d.get("reasons") for d in decisions)
    assert sorted(d["signal_id"] for d in decisions) == sorted(s["signal_id"] for s in signals)
    approved = {d["intent"]["intent_id"]: d for d in decisions if d.get("approved")}
    observed = [r for r in reports if r.get("observed")]
    assert sorted(r["order"]["intent_id"] for r in observed) == sorted(approved)
    for report in reports:
        assert "fill" not in report, report  # nothing filled: no order was sent
        assert not report.get("realized_pnl_delta") and not report.get("fee_delta")
    for report in observed:
        assert report["venue"] == "observe" and "position" not in report
        fill = report["hypothetical_fill"]
        assert fill["price"] > 0 and fill["quantity"] == report["order"]["quantity"]

"""Capture replay: raw Binance frames through the live client's own parser and order-book sync.

On the real captures (fixture `binance_capture`, read in place): the replayed book follows Binance's
documented bridging of the REST snapshot, level for level; and the live websocket client, fed the
same frames and the same snapshot by the local peer, emits the same events. On small hand-made
captures: gaps, malformed lines, several files, missing input.
"""

from __future__ import annotations

import gzip
import json
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from quantumedge.ingest.binance import BinanceSource
from quantumedge.ingest.capture import CaptureError, CaptureSource, capture_files
from quantumedge.ingest.settings import IngestSettings
from quantumedge.v1 import market_pb2
from tests.peers.binance_market import BinanceMarketPeer, wait_until
from tests.support.captures import CAPTURE_ENV, Capture, find_capture_dir

LEVELS = 20


def _raw_lines(path: Path, limit: int | None = None) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            head, _, frame = line.rstrip("\n").partition(" ")
            out.append((int(head), frame))
            if limit is not None and len(out) >= limit:
                break
    return out


def _is_snapshot(frame: str) -> bool:
    return frame.startswith('{"lastUpdateId"')


def _write_capture(path: Path, lines: list[tuple[int, str]]) -> Path:
    with gzip.open(path, "wt") as fh:
        for received_ns, frame in lines:
            fh.write(f"{received_ns} {frame}\n")
    return path


class ReferenceBook:
    """Binance's "how to manage a local order book" for spot, written out plainly, in exact decimals."""

    def __init__(self, snapshot: dict) -> None:
        self.bids = {Decimal(p): Decimal(q) for p, q in snapshot["bids"]}
        self.asks = {Decimal(p): Decimal(q) for p, q in snapshot["asks"]}
        self.update_id = snapshot["lastUpdateId"]
        self.bridged = False

    def apply(self, diff: dict) -> bool:
        """True when the diff was applied; raises on a broken sequence (there is none in the captures)."""
        first, final = diff["U"], diff["u"]
        if final <= self.update_id:
            return False  # "drop any event where u is <= lastUpdateId"
        if not self.bridged:
            assert first <= self.update_id + 1 <= final, "the first applied event must bridge the snapshot"
            self.bridged = True
        else:
            assert first == self.update_id + 1, "each event must follow the previous one"
        for side, key in ((self.bids, "b"), (self.asks, "a")):
            for p, q in diff[key]:
                if Decimal(q) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = Decimal(q)
        self.update_id = final
        return True

    def top(self, n: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        bids = sorted(self.bids.items(), reverse=True)[:n]
        asks = sorted(self.asks.items())[:n]
        return [(float(p), float(q)) for p, q in bids], [(float(p), float(q)) for p, q in asks]

    def as_floats(self) -> tuple[int, dict[float, float], dict[float, float]]:
        return (
            self.update_id,
            {float(p): float(q) for p, q in self.bids.items()},
            {float(p): float(q) for p, q in self.asks.items()},
        )


def _levels(levels) -> list[tuple[float, float]]:
    return [(lv.price, lv.quantity) for lv in levels]


# -- the real captures ---------------------------------------------------------------------------------
@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT"])
def test_replayed_book_follows_the_documented_snapshot_bridging(binance_capture: Capture, symbol: str) -> None:
    lines = _raw_lines(binance_capture.path(symbol))
    snapshot = next(json.loads(f) for _, f in lines if _is_snapshot(f))
    diffs = [json.loads(f)["data"] for _, f in lines if '"depthUpdate"' in f[:80]]
    reference = ReferenceBook(snapshot)
    expected: list[tuple[int, tuple]] = [(reference.update_id, reference.top(LEVELS))]
    snapshot_seen = False
    for _, frame in lines:
        if _is_snapshot(frame):
            snapshot_seen = True
        if '"depthUpdate"' not in frame[:80]:
            continue
        diff = json.loads(frame)["data"]
        if reference.apply(diff):
            if snapshot_seen:
                expected.append((reference.update_id, reference.top(LEVELS)))
            else:
                # Buffered before the snapshot arrived and applied while bridging it: one event for all.
                expected[0] = (reference.update_id, reference.top(LEVELS))
    assert len(diffs) > 3000 and reference.bridged

    source = CaptureSource(binance_capture.path(symbol), depth_levels=LEVELS)
    events = list(source.events())
    depth = [e for e in events if e.HasField("depth")]
    assert [(e.depth.last_update_id, (_levels(e.depth.bids), _levels(e.depth.asks))) for e in depth] == expected
    # The whole local book, not just the top, ends where the documented procedure ends.
    assert source.feed.book_view(symbol) == reference.as_floats()
    assert source.feed.counters.depth_resyncs == 0 and source.feed.counters.malformed_frames == 0
    assert not [e for e in events if e.HasField("gap")]
    # Every trade and book ticker of the capture comes out, in order, with the exchange's trade time.
    trades = [json.loads(f)["data"] for _, f in lines if '@trade"' in f[:40]]
    out_trades = [e for e in events if e.HasField("trade")]
    assert [t.trade.trade_id for t in out_trades] == [t["t"] for t in trades]
    assert [t.exchange_time_ns for t in out_trades] == [t["T"] * 1_000_000 for t in trades]
    assert sum(e.HasField("top_of_book") for e in events) == sum('@bookTicker"' in f[:40] for _, f in lines)
    assert all(e.source == "capture" for e in events)


def _normalised(events: list[market_pb2.MarketEvent]) -> list[market_pb2.MarketEvent]:
    """Events without what only the local clock decides: receive times (and exchange times copied from them)."""
    out = []
    for event in events:
        copy = market_pb2.MarketEvent()
        copy.CopyFrom(event)
        if copy.exchange_time_ns == copy.receive_time_ns:
            copy.exchange_time_ns = 0  # bookTicker and the snapshot's book: spot sends no event time
        copy.receive_time_ns = 0
        copy.source = ""
        out.append(copy)
    return out


def test_capture_replay_emits_what_the_live_client_emits_from_the_same_frames(
    binance_capture: Capture, tmp_path: Path
) -> None:
    prefix = {sym: _raw_lines(binance_capture.path(sym), limit=3000) for sym in binance_capture.symbols}
    paths = [_write_capture(tmp_path / f"{sym.lower()}.gz", lines) for sym, lines in prefix.items()]
    replayed = list(CaptureSource(paths).events())

    symbols = binance_capture.symbols
    gates = {sym: threading.Event() for sym in symbols}
    with BinanceMarketPeer(symbols) as peer:
        for sym, lines in prefix.items():
            snapshot = next(json.loads(f) for _, f in lines if _is_snapshot(f))
            peer.serve_recorded_snapshot(sym, snapshot, gates[sym])
        settings = IngestSettings(
            binance_ws_url=peer.ws_url, binance_rest_url=peer.rest_url, depth_levels=20, ping_interval_s=30.0
        )
        source = BinanceSource(settings, symbols)
        live: list[market_pb2.MarketEvent] = []
        stop = threading.Event()
        thread = threading.Thread(target=source.run, args=(live.append, stop), daemon=True)
        thread.start()
        try:
            wait_until(lambda: peer.active_connections == 1, what="the client to connect")
            merged = sorted(
                ((ns, i, sym, f) for sym, lines in prefix.items() for i, (ns, f) in enumerate(lines)),
                key=lambda item: item[0],
            )
            # Up to each symbol's snapshot line, the stream; then the snapshot answer, when the capture got it.
            sent = frames_sent = 0
            for pos, (_, _, sym, frame) in enumerate(merged):
                if not _is_snapshot(frame):
                    continue
                frames_sent += peer.send_frames(m[3] for m in merged[sent:pos])
                sent = pos + 1
                wait_until(lambda n=frames_sent: source.counters.frames >= n, what="the frames before the snapshot")
                gates[sym].set()
                wait_until(lambda s=sym: source.book_view(s)[0] > 0, what=f"{sym} to synchronise")
            peer.send_frames(f for _, _, _, f in merged[sent:])
            wait_until(lambda: len(live) >= len(replayed), timeout_s=60, what="the live client to catch up")
        finally:
            stop.set()
            thread.join(10)
    assert len(replayed) > 5000
    assert _normalised(live) == _normalised(replayed)
    assert {e.source for e in live} == {"binance"}


# -- hand-made captures --------------------------------------------------------------------------------
def _frame(stream: str, data: dict) -> str:
    return json.dumps({"stream": stream, "data": data})


def _diff(first: int, final: int, bids: list, asks: list) -> str:
    data = {"e": "depthUpdate", "E": 1_700_000_000_000 + final, "s": "BTCUSDT", "U": first, "u": final}
    return _frame("btcusdt@depth@100ms", {**data, "b": bids, "a": asks})


def _snapshot(last_id: int) -> str:
    return json.dumps({"lastUpdateId": last_id, "bids": [["100.00", "1.0"]], "asks": [["101.00", "2.0"]]})


def test_a_gap_in_the_capture_is_marked_and_the_next_snapshot_resynchronises(tmp_path: Path) -> None:
    lines = [
        (1, _diff(9, 11, [["100.00", "1.5"]], [])),
        (2, _snapshot(10)),
        (3, _diff(12, 12, [], [["101.00", "0"]])),
        (4, "not a capture line"),
        (5, _diff(20, 21, [["99.00", "3"]], [])),  # 13..19 never came: a gap
        (6, _diff(22, 22, [["98.00", "3"]], [])),
        (7, _snapshot(21)),  # the answer to the resync's fetch
        (8, _diff(23, 23, [["97.00", "1"]], [])),
    ]
    path = tmp_path / "gap.txt"
    path.write_text("".join(f"{ns} {f}\n" if ns != 4 else f"{f}\n" for ns, f in lines))
    source = CaptureSource(path, depth_levels=5)
    events = list(source.events())
    kinds = [e.WhichOneof("payload") for e in events]
    assert kinds == ["depth", "depth", "gap", "depth", "depth"]
    gap = events[2]
    assert gap.gap.stream == "depth" and gap.receive_time_ns == 5
    assert [e.depth.last_update_id for e in events if e.HasField("depth")] == [11, 12, 22, 23]
    assert source.feed.counters.depth_resyncs == 1
    assert source.snapshots_wanted == {"BTCUSDT": 3}  # the first buffer, the gap, and the diff after it
    assert source.files[0].malformed_lines == 1


def test_several_files_merge_by_receive_time_and_unconfigured_symbols_are_left_out(tmp_path: Path) -> None:
    btc = _write_capture(
        tmp_path / "btc.gz", [(1, _diff(9, 11, [], [])), (2, _snapshot(10)), (5, _diff(12, 12, [], []))]
    )
    eth_trade = {"e": "trade", "E": 3, "s": "ETHUSDT", "t": 7, "p": "10.0", "q": "1.0", "T": 3, "m": False}
    eth = _write_capture(tmp_path / "eth.gz", [(3, _frame("ethusdt@trade", eth_trade))])
    both = list(CaptureSource(tmp_path).events())
    assert [(e.symbol, e.receive_time_ns) for e in both] == [("BTCUSDT", 2), ("ETHUSDT", 3), ("BTCUSDT", 5)]
    only_btc = CaptureSource([btc, eth], symbols=["BTCUSDT"])
    assert only_btc.symbols == ["BTCUSDT"] and {e.symbol for e in only_btc.events()} == {"BTCUSDT"}
    with pytest.raises(CaptureError, match="none of the configured symbols"):
        CaptureSource(eth, symbols=["BTCUSDT"])


def test_run_restamps_on_request_and_keeps_capture_times_otherwise(tmp_path: Path) -> None:
    path = _write_capture(tmp_path / "c.gz", [(1_000, _diff(9, 11, [], [])), (2_000, _snapshot(10))])
    kept: list[market_pb2.MarketEvent] = []
    CaptureSource(path).run(kept.append, threading.Event())
    assert [e.receive_time_ns for e in kept] == [2_000]
    shifted: list[market_pb2.MarketEvent] = []
    CaptureSource(path, restamp=True, clock_ns=lambda: 10_000).run(shifted.append, threading.Event())
    assert [(e.exchange_time_ns, e.receive_time_ns) for e in shifted] == [(11_000, 11_000)]


def test_missing_or_empty_captures_are_named(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="capture not found"):
        capture_files(str(tmp_path / "nope.gz"))
    with pytest.raises(CaptureError, match="holds no"):
        capture_files(tmp_path)
    with pytest.raises(CaptureError, match="no capture given"):
        capture_files("")
    (tmp_path / "x.gz").write_bytes(gzip.compress(b'1 {"lastUpdateId": 1, "bids": [], "asks": []}\n'))
    with pytest.raises(CaptureError, match="no combined-stream frame"):
        CaptureSource(tmp_path)
    (tmp_path / "x.gz").write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(CaptureError, match="cannot read capture"):
        CaptureSource(tmp_path)


def test_the_capture_folder_is_found_in_place_or_through_the_env_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CAPTURE_ENV, str(tmp_path))
    assert find_capture_dir() == (tmp_path, f"{CAPTURE_ENV}={tmp_path}")
    monkeypatch.setenv(CAPTURE_ENV, str(tmp_path / "absent"))
    folder, where = find_capture_dir()
    assert folder is None and CAPTURE_ENV in where

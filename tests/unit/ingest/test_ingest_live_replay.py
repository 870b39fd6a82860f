"""The market peer's live replay of a capture: event times moved by one offset, frames otherwise as sent.

Frames here are written from Binance's documented stream formats (made-up values), never cut from a capture.
"""

from __future__ import annotations

import json
import threading

from websockets.sync.client import connect

from tests.peers.binance_market import BinanceMarketPeer, wait_until
from tests.peers.binance_replay import event_time_ms, replay_live, shift_frame, time_offset_ms

E0 = 1_700_000_000_000  # ms
NOW_MS = 1_800_000_000_000
TRADE = json.dumps(
    {
        "stream": "btcusdt@trade",
        "data": {"e": "trade", "E": E0 + 1, "s": "BTCUSDT", "t": 12345, "p": "0.001", "q": "100", "T": E0, "m": True},
    },
    separators=(",", ":"),
)
DEPTH = json.dumps(
    {"stream": "btcusdt@depth@100ms", "data": {"e": "depthUpdate", "E": E0 + 100, "s": "BTCUSDT", "U": 157, "u": 160}},
    separators=(",", ":"),
)
TICKER = json.dumps(
    {"stream": "btcusdt@bookTicker", "data": {"u": 400900217, "s": "BTCUSDT", "b": "25.35", "B": "31.2", "a": "25.36"}},
    separators=(",", ":"),
)
SNAPSHOT = '{"lastUpdateId":156,"bids":[["25.35","31.2"]],"asks":[["25.36","40.6"]]}'


def test_shift_moves_every_event_time_and_nothing_else() -> None:
    shifted = json.loads(shift_frame(TRADE, 5_000))
    original = json.loads(TRADE)
    assert shifted["data"]["E"] == E0 + 1 + 5_000 and shifted["data"]["T"] == E0 + 5_000
    assert {k: v for k, v in shifted["data"].items() if k not in ("E", "T")} == {
        k: v for k, v in original["data"].items() if k not in ("E", "T")
    }
    assert shifted["stream"] == original["stream"]
    # No event time (spot bookTicker), the REST snapshot, or not JSON: sent exactly as recorded.
    for frame in (TICKER, SNAPSHOT, "not json"):
        assert shift_frame(frame, 5_000) == frame
    assert event_time_ms(TICKER) is None and event_time_ms(DEPTH) == E0 + 100


def test_offset_stamps_the_first_timed_frame_when_it_is_sent() -> None:
    recv0 = 10**18
    lines = [(recv0, "BTCUSDT", TICKER), (recv0 + 250_000_000, "BTCUSDT", TRADE)]
    start_ms = 1_800_000_000_000
    offset = time_offset_ms(lines, start_ms)
    # The trade is sent 250 ms into the replay: its event time is then "now".
    assert E0 + 1 + offset == start_ms + 250


def test_live_replay_through_the_peer_paces_frames_and_opens_the_snapshot_gate() -> None:
    recv0 = 10**18
    lines = [
        (recv0, "BTCUSDT", DEPTH),
        (recv0 + 100_000_000, "BTCUSDT", SNAPSHOT),
        (recv0 + 200_000_000, "BTCUSDT", TICKER),
        (recv0 + 300_000_000, "BTCUSDT", TRADE),
        (recv0 + 5_000_000_000, "BTCUSDT", TRADE),  # beyond `seconds`: not played
    ]
    gates = {"BTCUSDT": threading.Event()}
    with BinanceMarketPeer(["BTCUSDT"]) as peer:
        url = f"{peer.ws_url}/stream?streams=btcusdt@trade/btcusdt@depth@100ms/btcusdt@bookTicker"
        with connect(url) as ws:
            wait_until(lambda: peer.active_connections == 1, timeout_s=10, what="the client to connect")
            stats = replay_live(peer, lines, gates, seconds=1.0, clock_ns=lambda: NOW_MS * 1_000_000)
            got = [ws.recv(timeout=10) for _ in range(3)]
    assert gates["BTCUSDT"].is_set() and stats.snapshots == 1 and stats.frames == 3
    assert [json.loads(f)["stream"] for f in got] == ["btcusdt@depth@100ms", "btcusdt@bookTicker", "btcusdt@trade"]
    depth, ticker, trade = (json.loads(f)["data"] for f in got)
    assert depth["E"] - stats.offset_ms == E0 + 100 and depth["U"] == 157 and depth["u"] == 160
    assert trade["T"] - trade["E"] == -1  # the spacing inside a frame is kept
    assert ticker == json.loads(TICKER)["data"]
    # The first timed frame is stamped "now" (the replay's clock at its start); the others keep their spacing.
    assert depth["E"] == NOW_MS and trade["E"] - depth["E"] == -99

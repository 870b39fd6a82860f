"""bench/compare/convert.py on synthetic frames: which lines become which hftbacktest rows, with which fields."""

from __future__ import annotations

import json

import numpy as np

from bench.compare import convert as c

MS = 1_000_000
T0 = 1_723_161_000_000  # ms


def frame(stream: str, data: dict) -> str:
    return json.dumps({"stream": f"btcusdt@{stream}", "data": data})


def diff(first: int, last: int, e_ms: int, bids: list, asks: list) -> str:
    return frame("depth@100ms", {"e": "depthUpdate", "E": e_ms, "U": first, "u": last, "b": bids, "a": asks})


def trade(e_ms: int, px: str, qty: str, buyer_maker: bool) -> str:
    return frame("trade", {"e": "trade", "E": e_ms, "T": e_ms, "p": px, "q": qty, "m": buyer_maker})


def lines() -> list[tuple[int, str]]:
    # The receive clock runs 1 s behind the exchange's, as the real capture's does.
    rx = (T0 - 1_000) * MS
    snapshot = json.dumps({"lastUpdateId": 10, "bids": [["100.0", "1.0"], ["99.9", "2.0"]], "asks": [["100.1", "3.0"]]})
    return [
        (rx, diff(5, 9, T0, [["100.0", "5.0"]], [])),  # before the snapshot: dropped
        (rx + 1 * MS, frame("bookTicker", {"u": 9, "s": "BTCUSDT", "b": "100.0", "B": "1", "a": "100.1", "A": "1"})),
        (rx + 2 * MS, snapshot),
        (rx + 3 * MS, diff(8, 10, T0 + 3, [["100.0", "4.0"]], [])),  # at or below lastUpdateId: dropped
        (rx + 4 * MS, diff(11, 12, T0 + 4, [["100.0", "0"]], [["100.2", "1.5"]])),
        (rx + 5 * MS, trade(T0 + 5, "100.1", "0.25", buyer_maker=False)),
        (rx + 6 * MS, trade(T0 + 6, "100.0", "0.5", buyer_maker=True)),
    ]


def kinds(events: np.ndarray) -> list[int]:
    return [int(ev) & 0xFF for ev in events["ev"]]


def test_rows_per_line_and_dropped_diffs() -> None:
    conv = c.convert_lines(lines())
    assert conv.frames == {"depth@100ms": 3, "bookTicker": 1, "snapshot": 1, "trade": 2}
    assert conv.dropped_diffs == 2
    # clear + 3 snapshot levels, 2 diff levels, 2 trades; bookTicker is not converted
    assert (
        kinds(conv.events)
        == [c.DEPTH_CLEAR_EVENT] + [c.DEPTH_SNAPSHOT_EVENT] * 3 + [c.DEPTH_EVENT] * 2 + [c.TRADE_EVENT] * 2
    )
    assert conv.events.dtype.itemsize == 64
    assert conv.events.dtype.names == ("ev", "exch_ts", "local_ts", "px", "qty", "order_id", "ival", "fval")


def test_fields_sides_and_times() -> None:
    ev = c.convert_lines(lines()).events
    both = c.EXCH_EVENT | c.LOCAL_EVENT
    assert all(int(f) & both == both for f in ev["ev"])
    diff_rows, trades = ev[4:6], ev[6:]
    assert int(diff_rows[0]["ev"]) & c.BUY_EVENT and diff_rows[0]["qty"] == 0.0 and diff_rows[0]["px"] == 100.0
    assert int(diff_rows[1]["ev"]) & c.SELL_EVENT and diff_rows[1]["px"] == 100.2
    assert diff_rows[0]["exch_ts"] == (T0 + 4) * MS
    assert int(trades[0]["ev"]) & c.BUY_EVENT and trades[0]["qty"] == 0.25  # buyer took liquidity
    assert int(trades[1]["ev"]) & c.SELL_EVENT
    latency = ev["local_ts"] - ev["exch_ts"]
    assert latency.min() == 0  # the receive clock's 1 s lag is taken out
    assert np.all(np.diff(ev["local_ts"]) >= 0)
    assert np.all(ev[:4]["exch_ts"] <= diff_rows[0]["exch_ts"])  # the snapshot takes the last exchange time seen


def test_file_round_trip(tmp_path) -> None:
    import gzip

    src = tmp_path / "cap.gz"
    with gzip.open(src, "wt", encoding="utf-8") as fh:
        fh.writelines(f"{ns} {text}\n" for ns, text in lines())
    conv = c.convert_file(src, tmp_path / "out" / "ev.npy")
    loaded = np.load(tmp_path / "out" / "ev.npy")
    assert len(loaded) == len(conv.events) == 8
    assert np.array_equal(loaded["local_ts"], conv.events["local_ts"])

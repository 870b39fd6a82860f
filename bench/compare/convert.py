"""A raw Binance spot capture (`<receive ns> <frame>` lines) as hftbacktest's event array, numpy only.

What goes in: the REST depth snapshot (a clear, then one snapshot row per level), the depth diffs that follow
it as Binance's local-order-book procedure says (diffs whose last update id `u` is at or below the snapshot's
`lastUpdateId` are dropped, as are diffs before the snapshot), and every trade. bookTicker frames carry no
exchange time and are not part of hftbacktest's L2 format: they are counted, not converted.

Rows follow hftbacktest's documented event layout (ev, exch_ts, local_ts, px, qty, order_id, ival, fval) and
flags. The capture's clock ran behind the exchange's, so local times are shifted so the smallest feed latency
is zero (what hftbacktest's correct_local_timestamp does); rows are then in local-time order."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# hftbacktest's event flags (documented in its types API).
EXCH_EVENT = 1 << 31
LOCAL_EVENT = 1 << 30
BUY_EVENT = 1 << 29
SELL_EVENT = 1 << 28
DEPTH_EVENT = 1
TRADE_EVENT = 2
DEPTH_CLEAR_EVENT = 3
DEPTH_SNAPSHOT_EVENT = 4

EVENT_DTYPE = np.dtype(
    [
        ("ev", "u8"),
        ("exch_ts", "i8"),
        ("local_ts", "i8"),
        ("px", "f8"),
        ("qty", "f8"),
        ("order_id", "u8"),
        ("ival", "i8"),
        ("fval", "f8"),
    ],
    align=True,
)
_BOTH = EXCH_EVENT | LOCAL_EVENT


@dataclass
class Conversion:
    """The event array and what each kind of capture line became."""

    events: np.ndarray
    frames: dict[str, int] = field(default_factory=dict)  # stream kind -> frames read
    dropped_diffs: int = 0


def capture_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(receive ns, text) of every line of a capture file, gzip or plain."""
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for raw in fh:
            stamp, _, text = raw.rstrip("\n").partition(" ")
            if text:
                yield int(stamp), text


def _levels(rows: list, ev: int, exch: int, local: int, side: int) -> list[tuple]:
    return [(ev | _BOTH | side, exch, local, float(p), float(q), 0, 0, 0.0) for p, q in rows]


class _Converter:
    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.frames: dict[str, int] = {}
        self.snapshot_id: int | None = None
        self.dropped = 0
        self.last_exch = 0  # the snapshot has no exchange time: it takes the last one seen, keeping exch order

    def line(self, local: int, text: str) -> None:
        obj = json.loads(text)
        if "lastUpdateId" in obj:
            self._snapshot(local, obj)
            return
        stream, data = obj["stream"], obj["data"]
        kind = stream.split("@", 1)[1]
        self.frames[kind] = self.frames.get(kind, 0) + 1
        if kind.startswith("depth"):
            self._diff(local, data)
        elif kind == "trade":
            side = SELL_EVENT if data["m"] else BUY_EVENT  # buyer is the maker: a sell took liquidity
            ts = self._exch(data)
            self.rows.append((TRADE_EVENT | _BOTH | side, ts, local, float(data["p"]), float(data["q"]), 0, 0, 0.0))

    def _snapshot(self, local: int, obj: dict) -> None:
        self.frames["snapshot"] = self.frames.get("snapshot", 0) + 1
        self.snapshot_id = int(obj["lastUpdateId"])
        ts = self.last_exch or local
        self.rows.append((DEPTH_CLEAR_EVENT | _BOTH, ts, local, 0.0, 0.0, 0, 0, 0.0))
        self.rows += _levels(obj["bids"], DEPTH_SNAPSHOT_EVENT, ts, local, BUY_EVENT)
        self.rows += _levels(obj["asks"], DEPTH_SNAPSHOT_EVENT, ts, local, SELL_EVENT)

    def _exch(self, data: dict) -> int:
        self.last_exch = max(self.last_exch, int(data["E"]) * 1_000_000)
        return int(data["E"]) * 1_000_000

    def _diff(self, local: int, data: dict) -> None:
        if self.snapshot_id is None or int(data["u"]) <= self.snapshot_id:
            self.dropped += 1
            return
        ts = self._exch(data)
        self.rows += _levels(data["b"], DEPTH_EVENT, ts, local, BUY_EVENT)
        self.rows += _levels(data["a"], DEPTH_EVENT, ts, local, SELL_EVENT)


def convert_lines(lines: Iterable[tuple[int, str]]) -> Conversion:
    """The event array of one symbol's capture lines (receive ns, text), local times corrected and ordered."""
    conv = _Converter()
    for local, text in lines:
        conv.line(local, text)
    events = np.array(conv.rows, dtype=EVENT_DTYPE)
    if len(events):
        latency = events["local_ts"] - events["exch_ts"]
        events["local_ts"] -= min(int(latency.min()), 0)
        events = events[np.argsort(events["local_ts"], kind="stable")]
    return Conversion(events, conv.frames, conv.dropped)


def convert_file(path: Path, out: Path) -> Conversion:
    """Convert one capture file and save its event array as out (.npy)."""
    result = convert_lines(capture_lines(path))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, result.events)
    return result

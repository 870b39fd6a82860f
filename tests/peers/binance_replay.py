"""Replay a recorded Binance capture through the market peer as if it were live now.

A capture's exchange times are from the day it was recorded, while a live client stamps what it
receives with its own clock (and spot `bookTicker` frames carry no event time at all: the client
stamps them with the receive time). Played as recorded, one symbol's streams would be years apart.
A live replay therefore does what a real live feed looks like:

  * pacing: each frame is sent when its recorded receive time comes round again, measured from the
    start of the replay (divided by `speed`);
  * times: every event time in a frame's `data` (`E`, and `T` where Binance sends it: trade time,
    futures depth transaction time) is moved by one constant offset, chosen so the first frame that
    carries an event time is stamped "now" at the moment it is sent. Update ids, prices, quantities
    and every other field are untouched, and the frame keeps Binance's documented format;
  * the REST snapshot: the capture's `/api/v3/depth` reply (which has no time) is served, through the
    peer's gate, once the replay reaches the point where the capture received it.

`speed` above 1 compresses the pacing only: event times keep the capture's spacing, so the exchange
clock then runs ahead of the receive clock by (speed - 1) x elapsed, like a client whose clock lags
more and more; frames without an event time (bookTicker) fall behind the others. Only speed 1 is a
faithful live feed; pass `seconds` to replay just the start of a capture instead.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tests.peers.binance_market import BinanceMarketPeer

# Event-time keys of Binance stream payloads, in ms since the epoch (spot and futures docs).
TIME_KEYS = ("E", "T")
SNAPSHOT_PREFIX = '{"lastUpdateId"'


def event_time_ms(frame: str) -> int | None:
    """The frame's event time (`E`, else `T`) in ms, or None (bookTicker, snapshot, not JSON)."""
    try:
        data = json.loads(frame).get("data")
    except (ValueError, AttributeError):
        return None
    if not isinstance(data, dict):
        return None
    for key in TIME_KEYS:
        if isinstance(data.get(key), int):
            return data[key]
    return None


def shift_frame(frame: str, offset_ms: int) -> str:
    """The frame with every event time of its payload moved by `offset_ms`; unchanged when it has none."""
    try:
        envelope = json.loads(frame)
    except ValueError:
        return frame
    data = envelope.get("data") if isinstance(envelope, dict) else None
    if not isinstance(data, dict) or not any(isinstance(data.get(k), int) for k in TIME_KEYS):
        return frame
    for key in TIME_KEYS:
        if isinstance(data.get(key), int):
            data[key] += offset_ms
    return json.dumps(envelope, separators=(",", ":"))


@dataclass
class ReplayStats:
    frames: int = 0
    snapshots: int = 0
    offset_ms: int = 0
    capture_seconds: float = 0.0


def time_offset_ms(lines: list[tuple[int, str, str]], start_ms: int) -> int:
    """The constant offset that stamps the first frame with an event time at the moment it is sent."""
    first_recv = lines[0][0]
    for recv_ns, _, frame in lines:
        event_ms = event_time_ms(frame)
        if event_ms is not None:
            return start_ms + (recv_ns - first_recv) // 1_000_000 - event_ms
    return 0


def replay_live(
    peer: BinanceMarketPeer,
    lines: Iterable[tuple[int, str, str]],
    gates: dict[str, threading.Event],
    speed: float = 1.0,
    seconds: float | None = None,
    stop: threading.Event | None = None,
    clock_ns: Callable[[], int] = time.time_ns,
) -> ReplayStats:
    """Play (receive ns, symbol, frame) lines, merged by receive time, as a live feed; see the module doc.

    Blocks until the replay ends (or `stop` is set). Frames due at the same moment go in one batch.
    """
    if speed <= 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    ordered = list(lines)
    stats = ReplayStats()
    if not ordered:
        return stats
    first_recv = ordered[0][0]
    if seconds is not None:
        ordered = [line for line in ordered if line[0] - first_recv <= seconds * 1e9]
    start_mono = time.monotonic()
    stats.offset_ms = time_offset_ms(ordered, clock_ns() // 1_000_000)
    batch: list[str] = []
    for recv_ns, symbol, frame in ordered:
        if stop is not None and stop.is_set():
            break
        delay = start_mono + (recv_ns - first_recv) / 1e9 / speed - time.monotonic()
        if delay > 0:
            stats.frames += peer.send_frames(batch) if batch else 0
            batch = []
            time.sleep(delay)
        if frame.startswith(SNAPSHOT_PREFIX):
            stats.frames += peer.send_frames(batch) if batch else 0
            batch = []
            gates[symbol].set()
            stats.snapshots += 1
            continue
        batch.append(shift_frame(frame, stats.offset_ms))
    stats.frames += peer.send_frames(batch) if batch else 0
    stats.capture_seconds = (ordered[-1][0] - first_recv) / 1e9
    return stats

"""Replay a raw Binance capture through the live client's parser and order-book sync.

A capture is what the combined-stream websocket delivered, one line per frame, optionally gzip:

    <local receive time, ns since the epoch> <the frame exactly as received>

plus the REST `GET /api/v3/depth` reply that bridged the depth stream, as a line of its own (a JSON
object with `lastUpdateId`, `bids`, `asks`). Each file holds one symbol's streams; its snapshot lines
belong to that symbol (the first stream frame of the file names it).

Frames go, with their recorded receive times, into the same BinanceFeed the websocket client uses,
and the snapshot goes into the same DepthSync at the point of the capture it arrived at, so the
events that come out are the ones live produced from those frames: same parsing, same validation,
same bridging of the snapshot, same gap markers. Several files are merged by receive time.
"""

from __future__ import annotations

import gzip
import heapq
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from quantumedge.ingest.binance.feed import BinanceFeed, log_limited
from quantumedge.ingest.binance.messages import MalformedFrameError, VenueError, parse_snapshot
from quantumedge.ingest.source import Emit, ReplayClock
from quantumedge.shared.logs import get_logger
from quantumedge.v1 import ingest_pb2, market_pb2

log = get_logger(__name__)

SOURCE = "capture"
_GZIP_MAGIC = b"\x1f\x8b"
_FRAME_PREFIX = '{"stream"'
# Lines read to find the symbol a file carries before giving up on it.
_PEEK_LINES = 10_000


class CaptureError(ValueError):
    """A capture that cannot be used (missing, unreadable, no symbol); the message names the path."""


def capture_files(spec: str | Path | Sequence[str | Path]) -> list[Path]:
    """Capture files named by `spec`: files, or folders (every *.gz inside), comma-separated or a list."""
    items: list[str | Path]
    if isinstance(spec, str):
        items = [p.strip() for p in spec.split(",") if p.strip()]
    elif isinstance(spec, Path):
        items = [spec]
    else:
        items = list(spec)
    if not items:
        raise CaptureError("no capture given: pass --capture PATH or set ingest.capture_path (QE_INGEST__CAPTURE_PATH)")
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(path.glob("*.gz"))
            if not found:
                raise CaptureError(f"capture folder {path} holds no *.gz capture")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise CaptureError(f"capture not found: {path} (ingest.capture_path / --capture)")
    return files


def _open_text(path: Path):
    with path.open("rb") as raw:
        magic = raw.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rt", encoding="utf-8", newline="\n")
    return path.open("r", encoding="utf-8", newline="\n")


@dataclass
class CaptureLine:
    received_ns: int
    text: str
    file_symbol: str


class CaptureFile:
    """One capture file: its symbol and its lines (read lazily, one at a time)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lines_read = 0
        self.malformed_lines = 0
        self.symbol = self._find_symbol()

    def _raw_lines(self) -> Iterator[tuple[int, str]]:
        try:
            with _open_text(self.path) as fh:
                for line in fh:
                    line = line.rstrip("\r\n")
                    if not line:
                        continue
                    head, _, frame = line.partition(" ")
                    try:
                        received_ns = int(head)
                    except ValueError:
                        self.malformed_lines += 1
                        log_limited("capture line without a receive time", self.malformed_lines, path=str(self.path))
                        continue
                    yield received_ns, frame
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise CaptureError(f"cannot read capture {self.path}: {type(exc).__name__}: {exc}") from None

    def _find_symbol(self) -> str:
        for i, (_, frame) in enumerate(self._raw_lines()):
            if i >= _PEEK_LINES:
                break
            if not frame.startswith(_FRAME_PREFIX):
                continue
            try:
                stream = json.loads(frame)["stream"]
            except (ValueError, KeyError, TypeError):
                continue
            if isinstance(stream, str) and "@" in stream:
                return stream.split("@", 1)[0].upper()
        raise CaptureError(f"capture {self.path} holds no combined-stream frame in its first {_PEEK_LINES} lines")

    def lines(self) -> Iterator[CaptureLine]:
        for received_ns, text in self._raw_lines():
            self.lines_read += 1
            yield CaptureLine(received_ns, text, self.symbol)


class CaptureSource:
    """A MarketSource over raw Binance captures. `speed`: 0 = as fast as possible, 1 = real time, N = N x.

    `restamp` shifts every time so the first frame is "now" (downstream staleness guards then accept the
    data); off, events keep the capture's own exchange and receive times.
    """

    name = SOURCE

    def __init__(
        self,
        paths: str | Path | Sequence[str | Path],
        symbols: Iterable[str] | None = None,
        *,
        speed: float = 0.0,
        restamp: bool = False,
        trade_stream: str = "trade",
        depth_levels: int = 20,
        max_buffered_diffs: int = 10_000,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        if speed < 0:
            raise ValueError(f"capture speed must be >= 0, got {speed}")
        files = [CaptureFile(p) for p in capture_files(paths)]
        wanted = {s.upper() for s in symbols} if symbols else None
        self.files = [f for f in files if wanted is None or f.symbol in wanted]
        if not self.files:
            found = ", ".join(sorted({f.symbol for f in files}))
            configured = ", ".join(sorted(wanted or []))
            raise CaptureError(f"the capture holds {found}, none of the configured symbols {configured}")
        self.symbols = sorted({f.symbol for f in self.files})
        self.speed = speed
        self.restamp = restamp
        self._clock_ns = clock_ns
        self._feed_args = {
            "trade_stream": trade_stream,
            "depth_levels": depth_levels,
            "max_buffered_diffs": max_buffered_diffs,
        }
        self.feed = self._new_feed(lambda _event: None)
        self._running = False
        self.replayed = 0
        self.frames = 0
        self.snapshot_lines = 0
        # Symbols whose depth sync asked for a snapshot the capture did not (yet) hold.
        self.snapshots_wanted: dict[str, int] = {}

    def _new_feed(self, emit: Emit) -> BinanceFeed:
        return BinanceFeed(
            self.symbols, source_name=self.name, emit=emit, want_snapshot=self._want_snapshot, **self._feed_args
        )

    def _want_snapshot(self, symbol: str) -> None:
        self.snapshots_wanted[symbol] = self.snapshots_wanted.get(symbol, 0) + 1

    # -- MarketSource ------------------------------------------------------------------------------
    def stream_status(self) -> list[ingest_pb2.StreamStatus]:
        return self.feed.stream_status(self._running)

    def run(self, emit: Emit, stop: threading.Event) -> None:
        self._running = True
        try:
            self._replay(emit, stop)
        finally:
            self._running = False

    def events(self) -> Iterator[market_pb2.MarketEvent]:
        """Every event of the capture, in order, with the capture's own times (no pacing, no restamp)."""
        out: list[market_pb2.MarketEvent] = []
        self.feed = self._new_feed(out.append)
        for line in self._merged():
            self._handle(line)
            yield from out
            out.clear()

    def _merged(self) -> Iterator[CaptureLine]:
        # Ties keep file order (heapq.merge is stable across its inputs).
        return heapq.merge(*(f.lines() for f in self.files), key=lambda line: line.received_ns)

    def _handle(self, line: CaptureLine) -> None:
        if line.text.startswith(_FRAME_PREFIX):
            self.frames += 1
            self.feed.on_frame(line.text, line.received_ns)
            return
        try:
            obj = json.loads(line.text)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and "lastUpdateId" in obj:
            self.snapshot_lines += 1
            try:
                snapshot = parse_snapshot(obj)
            except (MalformedFrameError, VenueError) as exc:
                self.feed.counters.snapshot_errors += 1
                log_limited("capture snapshot unusable", self.feed.counters.snapshot_errors, error=str(exc))
                return
            if line.file_symbol in self.feed.syncs:
                self.feed.on_snapshot(line.file_symbol, snapshot, line.received_ns)
            return
        # Anything else is a frame like any other: the feed counts it (control, error or malformed).
        self.frames += 1
        self.feed.on_frame(line.text, line.received_ns)

    def _replay(self, emit: Emit, stop: threading.Event) -> None:
        pace = ReplayClock(self.speed, self.restamp, self._clock_ns)

        def deliver(event: market_pb2.MarketEvent) -> None:
            if pace.shift:
                event.exchange_time_ns += pace.shift
                event.receive_time_ns += pace.shift
            emit(event)
            self.replayed += 1

        self.feed = self._new_feed(deliver)
        for line in self._merged():
            if not pace.wait_for(line.received_ns, stop):
                return
            self._handle(line)
        unsynced = [s for s in self.symbols if not self.feed.syncs[s].synced]
        if unsynced:
            log.warning(
                "capture ended with depth not synchronised (no bridging snapshot in the capture)",
                extra={"symbols": unsynced, "snapshot_lines": self.snapshot_lines},
            )
        log.info(
            "capture replay finished",
            extra={"events": self.replayed, "frames": self.frames, "files": [str(f.path) for f in self.files]},
        )

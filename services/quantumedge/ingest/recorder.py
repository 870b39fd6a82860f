"""Record market events to zstd-compressed Parquet, off the hot path, with rotation and retention.

Layout (shared/market_files.py): root/symbol=SYM/date=YYYY-MM-DD/hour=HH/part-NNNNN.parquet, by
exchange time in UTC. The feed only puts events on a bounded queue (never blocks; a full queue
counts a drop); a writer thread batches them into row groups. A file is written as
`part-N.parquet.inprogress` and renamed when closed, so readers globbing `*.parquet` only ever see
complete files. Files rotate when their hour is over or they pass the size limit; retention
deletes whole files by age and then oldest-first until the total size fits.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from quantumedge.shared.logs import get_logger
from quantumedge.shared.market_files import SCHEMA, events_to_table
from quantumedge.v1 import market_pb2

log = get_logger(__name__)

IN_PROGRESS = ".inprogress"
_PART = re.compile(r"part-(\d+)\.parquet")
_STOP = object()

PartitionKey = tuple[str, str, str]  # symbol, date, hour


def partition_of(event: market_pb2.MarketEvent) -> PartitionKey:
    ts_ns = event.exchange_time_ns or event.receive_time_ns
    when = datetime.fromtimestamp(ts_ns / 1e9, tz=UTC)
    return event.symbol, when.strftime("%Y-%m-%d"), when.strftime("%H")


def partition_dir(root: Path, key: PartitionKey) -> Path:
    symbol, date, hour = key
    return root / f"symbol={symbol}" / f"date={date}" / f"hour={hour}"


def _hour_end_ns(path: Path) -> int | None:
    """End of the hour partition a file belongs to, or None when the path is not partitioned."""
    parts = dict(p.split("=", 1) for p in path.parts if "=" in p)
    try:
        start = datetime.strptime(f"{parts['date']} {parts['hour']}", "%Y-%m-%d %H").replace(tzinfo=UTC)
    except (KeyError, ValueError):
        return None
    return int((start.timestamp() + 3600) * 1e9)


@dataclass
class RetentionResult:
    deleted_files: int = 0
    deleted_bytes: int = 0
    kept_files: int = 0
    kept_bytes: int = 0


def enforce_retention(root: Path, max_age_s: float, max_total_bytes: int, now_ns: int) -> RetentionResult:
    """Delete complete files older than max_age_s, then the oldest ones until the total fits.

    Files being written (.inprogress) are never touched and do not count.
    """
    result = RetentionResult()
    files = []
    for path in root.glob("symbol=*/date=*/hour=*/*.parquet"):
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            continue
        end = _hour_end_ns(path) or int(path.stat().st_mtime * 1e9)
        files.append((end, path.parent.name, path.name, str(path), size))
    files.sort()  # oldest hour first, then part name
    cutoff = now_ns - int(max_age_s * 1e9)
    total = sum(f[4] for f in files)
    for end, _, _, name, size in files:
        if end <= cutoff or total > max_total_bytes:
            with contextlib.suppress(FileNotFoundError):
                os.remove(name)
                result.deleted_files += 1
                result.deleted_bytes += size
            total -= size
            _remove_empty_parents(Path(name).parent, root)
        else:
            result.kept_files += 1
            result.kept_bytes += size
    return result


def _remove_empty_parents(directory: Path, root: Path) -> None:
    while directory != root and root in directory.parents:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


class _OpenFile:
    def __init__(self, directory: Path, part: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.final = directory / f"part-{part:05d}.parquet"
        self.path = self.final.with_name(self.final.name + IN_PROGRESS)
        self.writer = pq.ParquetWriter(self.path, SCHEMA, compression="zstd")
        self.rows = 0
        self.last_write = time.monotonic()

    def write(self, table) -> int:
        self.writer.write_table(table)
        self.rows += table.num_rows
        self.last_write = time.monotonic()
        return self.path.stat().st_size

    def close(self) -> int:
        self.writer.close()
        os.replace(self.path, self.final)
        return self.final.stat().st_size


@dataclass
class RecorderStats:
    queued: int = 0
    recorded: int = 0
    dropped: int = 0
    batches: int = 0
    files_closed: int = 0
    bytes_closed: int = 0
    write_errors: int = 0
    retention_deleted_files: int = 0


class Recorder:
    """Events -> Parquet, written by a background thread. record() never blocks the feed."""

    def __init__(
        self,
        root: Path,
        *,
        rotate_bytes: int = 64 * 1024 * 1024,
        batch_events: int = 5_000,
        flush_s: float = 5.0,
        queue_max: int = 200_000,
        retention_max_age_s: float = 7 * 24 * 3600,
        retention_max_bytes: int = 10 * 1024**3,
        retention_every_s: float = 60.0,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.root = Path(root)
        self.rotate_bytes = rotate_bytes
        self.batch_events = batch_events
        self.flush_s = flush_s
        self.retention_max_age_s = retention_max_age_s
        self.retention_max_bytes = retention_max_bytes
        self.retention_every_s = retention_every_s
        self._clock_ns = clock_ns
        self._queue: queue.Queue = queue.Queue(maxsize=queue_max)
        self._open: dict[PartitionKey, _OpenFile] = {}
        self._next_part: dict[PartitionKey, int] = {}
        self._thread: threading.Thread | None = None
        self._flush_requests: list[threading.Event] = []
        self._newest_event_ns = 0
        self.stats = RecorderStats()

    # -- feed side ---------------------------------------------------------------------------------
    def record(self, event: market_pb2.MarketEvent) -> bool:
        """Queue one event; False (and a counted drop) if the writer is too far behind."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.stats.dropped += 1
            if self.stats.dropped in (1, 10, 100) or self.stats.dropped % 10_000 == 0:
                log.warning("recorder queue full; events dropped", extra={"dropped": self.stats.dropped})
            return False
        self.stats.queued += 1
        return True

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> Recorder:
        self.root.mkdir(parents=True, exist_ok=True)
        self._discard_orphans()
        self._thread = threading.Thread(target=self._run, name="ingest-recorder", daemon=True)
        self._thread.start()
        return self

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Write everything queued so far and close every open file (they become readable)."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout_s)

    def stop(self, timeout_s: float = 30.0) -> None:
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("recorder did not stop in time; some events may be unwritten")
        self._thread = None

    def _discard_orphans(self) -> None:
        """An .inprogress file left by a crash has no Parquet footer: it cannot be read, so it goes."""
        for path in self.root.glob(f"symbol=*/date=*/hour=*/*{IN_PROGRESS}"):
            log.warning("discarding incomplete recording left by an earlier run", extra={"path": str(path)})
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    # -- writer thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        pending: list[market_pb2.MarketEvent] = []
        last_flush = time.monotonic()
        last_retention = 0.0
        stopping = False
        while not stopping:
            timeout = max(0.0, self.flush_s - (time.monotonic() - last_flush))
            flush_now: list[threading.Event] = []
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            while item is not None:
                if item is _STOP:
                    stopping = True
                elif isinstance(item, threading.Event):
                    flush_now.append(item)
                else:
                    pending.append(item)
                if len(pending) >= self.batch_events or stopping:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    item = None
            due = time.monotonic() - last_flush >= self.flush_s
            if pending and (len(pending) >= self.batch_events or due or stopping or flush_now):
                self._write(pending)
                pending = []
                last_flush = time.monotonic()
            elif due:
                last_flush = time.monotonic()
            self._close_idle()
            if stopping or flush_now:
                self._close_all()
                for event in flush_now:
                    event.set()
            if stopping or time.monotonic() - last_retention >= self.retention_every_s:
                self._retention()
                last_retention = time.monotonic()

    def _write(self, events: list[market_pb2.MarketEvent]) -> None:
        groups: dict[PartitionKey, list[market_pb2.MarketEvent]] = {}
        for event in events:
            groups.setdefault(partition_of(event), []).append(event)
            self._newest_event_ns = max(self._newest_event_ns, event.exchange_time_ns)
        for key, group in groups.items():
            try:
                self._write_group(key, group)
            except Exception:
                self.stats.write_errors += 1
                log.exception("recording write failed; batch lost", extra={"partition": "/".join(key)})
        self.stats.batches += 1

    def _write_group(self, key: PartitionKey, events: list[market_pb2.MarketEvent]) -> None:
        # A newer hour for this symbol means the older hours are over: close their files.
        for other in [k for k in self._open if k[0] == key[0] and k[1:] < key[1:]]:
            self._close(other)
        handle = self._open.get(key)
        if handle is None:
            handle = self._open[key] = _OpenFile(partition_dir(self.root, key), self._allocate_part(key))
        size = handle.write(events_to_table(events))
        self.stats.recorded += len(events)
        if size >= self.rotate_bytes:
            self._close(key)

    def _allocate_part(self, key: PartitionKey) -> int:
        part = self._next_part.get(key)
        if part is None:
            directory = partition_dir(self.root, key)
            numbers = [int(m.group(1)) for p in directory.glob("part-*") if (m := _PART.match(p.name))]
            part = max(numbers, default=-1) + 1
        self._next_part[key] = part + 1
        return part

    def _close(self, key: PartitionKey) -> None:
        handle = self._open.pop(key)
        try:
            self.stats.bytes_closed += handle.close()
            self.stats.files_closed += 1
        except Exception:
            self.stats.write_errors += 1
            log.exception("closing a recording failed", extra={"path": str(handle.path)})

    def _close_idle(self) -> None:
        """A partition nobody writes to any more (symbol dropped, feed stopped) is closed and readable."""
        idle_after = max(3 * self.flush_s, 1.0)
        now = time.monotonic()
        for key in [k for k, h in self._open.items() if now - h.last_write > idle_after]:
            self._close(key)

    def _close_all(self) -> None:
        for key in list(self._open):
            self._close(key)

    def _retention(self) -> None:
        # Age is measured from the newest data recorded, when that is older than now: recording a capture
        # of last year must not delete it as it is written. A future-stamped event never ages anything.
        now_ns = self._clock_ns()
        if self._newest_event_ns:
            now_ns = min(now_ns, self._newest_event_ns)
        try:
            result = enforce_retention(self.root, self.retention_max_age_s, self.retention_max_bytes, now_ns=now_ns)
        except OSError:
            log.exception("retention pass failed")
            return
        if result.deleted_files:
            self.stats.retention_deleted_files += result.deleted_files
            log.info(
                "retention deleted old recordings",
                extra={"files": result.deleted_files, "bytes": result.deleted_bytes, "kept_bytes": result.kept_bytes},
            )

    def open_files(self) -> list[Path]:
        return [h.path for h in self._open.values()]

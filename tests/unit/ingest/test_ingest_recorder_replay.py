"""Recorder -> Parquet files -> replay, rotation, retention, and a feed that never blocks."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from quantumedge.ingest.recorder import IN_PROGRESS, Recorder, enforce_retention
from quantumedge.ingest.replay import NoRecordingError, ReplaySource
from quantumedge.shared.market_files import read_table, recorded_files, table_to_events
from quantumedge.v1 import common_pb2, market_pb2

HOUR_NS = 3600 * 10**9
T0 = 1_700_000_000 * 10**9  # 2023-11-14 22:13:20 UTC


def make_events(n: int, symbols=("BTCUSDT", "ETHUSDT"), start_ns: int = T0, step_ns: int = 10**8):
    """A mix of every payload kind, in exchange-time order."""
    out = []
    for i in range(n):
        sym = symbols[i % len(symbols)]
        ev = market_pb2.MarketEvent(
            symbol=sym, exchange_time_ns=start_ns + i * step_ns, receive_time_ns=start_ns + i * step_ns + 1000
        )
        ev.sequence = i // len(symbols) + 1
        ev.source = "binance"
        kind = i % 4
        if kind == 0:
            ev.trade.CopyFrom(market_pb2.Trade(price=100 + i, quantity=0.5, buyer_is_maker=bool(i % 2), trade_id=i))
        elif kind == 1:
            ev.top_of_book.CopyFrom(market_pb2.TopOfBook(bid_price=99, bid_quantity=1, ask_price=101, ask_quantity=2))
        elif kind == 2:
            ev.depth.bids.extend([common_pb2.PriceLevel(price=99 - k, quantity=k + 1) for k in range(5)])
            ev.depth.asks.extend([common_pb2.PriceLevel(price=101 + k, quantity=k + 1) for k in range(5)])
            ev.depth.last_update_id = i
        else:
            ev.gap.CopyFrom(market_pb2.GapMarker(stream="all", reason="reconnect"))
        out.append(ev)
    return out


def record(tmp_path: Path, events, **kwargs) -> Recorder:
    # The recorder's clock stands at the recordings' time, or retention would delete 2023 at once.
    recorder = Recorder(tmp_path, **{"flush_s": 60.0, "clock_ns": lambda: T0, **kwargs}).start()
    for ev in events:
        assert recorder.record(ev)
    recorder.stop()
    return recorder


def test_recorded_files_round_trip_in_the_shared_layout(tmp_path: Path) -> None:
    events = make_events(400)
    recorder = record(tmp_path, events)
    files = recorded_files(tmp_path)
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "symbol=BTCUSDT/date=2023-11-14/hour=22/part-00000.parquet",
        "symbol=ETHUSDT/date=2023-11-14/hour=22/part-00000.parquet",
    ]
    assert recorder.stats.recorded == 400 and recorder.stats.dropped == 0 and recorder.stats.files_closed == 2
    meta = pq.ParquetFile(files[0]).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    back = list(table_to_events(read_table(files)))
    assert back == events
    assert list(tmp_path.rglob(f"*{IN_PROGRESS}")) == []


def test_files_in_progress_are_invisible_until_flushed(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path, flush_s=60.0, batch_events=10, clock_ns=lambda: T0).start()
    try:
        for ev in make_events(40):
            recorder.record(ev)
        # Batches are written, but the files have no footer yet: readers must not see them.
        assert recorder.flush()
        assert len(recorded_files(tmp_path)) == 2
        for ev in make_events(40, start_ns=T0 + 10**10):
            recorder.record(ev)
        assert recorder.flush()
        # Flushing closed the files; more events went into new parts.
        assert [p.name for p in recorded_files(tmp_path, "BTCUSDT")] == ["part-00000.parquet", "part-00001.parquet"]
    finally:
        recorder.stop()


def test_rotation_by_hour_and_by_size(tmp_path: Path) -> None:
    # Two hours of events; a tiny size limit closes a file after every batch.
    events = make_events(200, symbols=("BTCUSDT",), step_ns=HOUR_NS // 100)
    recorder = record(tmp_path, events, batch_events=50, rotate_bytes=1, clock_ns=lambda: T0 + 2 * HOUR_NS)
    hours = sorted({p.parent.name for p in recorded_files(tmp_path)})
    assert hours == ["hour=00", "hour=22", "hour=23"]  # 22:13 + 200 x 36 s runs past midnight
    assert recorder.stats.files_closed >= 4
    assert list(table_to_events(read_table(recorded_files(tmp_path)))) == events


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path, queue_max=3)  # not started: nothing drains the queue
    results = [recorder.record(ev) for ev in make_events(5)]
    assert results == [True, True, True, False, False]
    assert recorder.stats.dropped == 2


def test_retention_by_age_then_by_total_size(tmp_path: Path) -> None:
    for day in range(3):
        start = T0 + day * 24 * HOUR_NS
        record(tmp_path, make_events(50, start_ns=start), clock_ns=lambda start=start: start)
    files = recorded_files(tmp_path)
    assert len(files) == 6
    now = T0 + 2 * 24 * HOUR_NS + HOUR_NS  # an hour into the newest day's partition
    by_age = enforce_retention(tmp_path, max_age_s=30 * 3600, max_total_bytes=10**12, now_ns=now)
    assert by_age.deleted_files == 2  # the oldest day is past 30 h
    assert all("2023-11-14" not in str(p) for p in recorded_files(tmp_path))
    assert not (tmp_path / "symbol=BTCUSDT" / "date=2023-11-14").exists(), "empty partitions are removed"
    newest = recorded_files(tmp_path)
    keep = sum(p.stat().st_size for p in newest if "2023-11-16" in str(p))
    by_size = enforce_retention(tmp_path, max_age_s=10**9, max_total_bytes=keep, now_ns=now)
    assert by_size.deleted_files == 2 and by_size.kept_bytes <= keep
    assert all("2023-11-16" in str(p) for p in recorded_files(tmp_path))


def test_incomplete_files_of_a_crashed_run_are_discarded(tmp_path: Path) -> None:
    orphan = tmp_path / "symbol=BTCUSDT" / "date=2023-11-14" / "hour=22" / f"part-00000.parquet{IN_PROGRESS}"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"PAR1 no footer")
    record(tmp_path, make_events(10))
    assert not orphan.exists()
    assert len(recorded_files(tmp_path)) == 2


def test_replay_as_fast_as_possible_restamps_and_resequences(tmp_path: Path) -> None:
    events = make_events(300)
    record(tmp_path, events)
    now = T0 + 10**15
    source = ReplaySource(tmp_path, ["BTCUSDT", "ETHUSDT"], speed=0, restamp=True, clock_ns=lambda: now)
    out: list[market_pb2.MarketEvent] = []
    source.run(out.append, threading.Event())
    assert len(out) == 300
    assert [e.exchange_time_ns - now for e in out] == [e.exchange_time_ns - T0 for e in events]
    assert all(e.source == "replay" and e.receive_time_ns == now for e in out)
    for sym in ("BTCUSDT", "ETHUSDT"):
        for kind in ("trade", "depth"):
            seqs = [e.sequence for e in out if e.symbol == sym and e.WhichOneof("payload") == kind]
            assert seqs == list(range(1, len(seqs) + 1))
    assert [e.trade for e in out] == [e.trade for e in events]


def test_replay_one_symbol_without_restamping(tmp_path: Path) -> None:
    events = make_events(40)
    record(tmp_path, events)
    out: list[market_pb2.MarketEvent] = []
    ReplaySource(tmp_path, ["ETHUSDT"], restamp=False).run(out.append, threading.Event())
    assert [e.exchange_time_ns for e in out] == [e.exchange_time_ns for e in events if e.symbol == "ETHUSDT"]


class _RecordingStop(threading.Event):
    """A stop event that records how long the replay asked to wait, and returns at once."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        return self.is_set()


@pytest.mark.parametrize("speed", [1.0, 10.0])
def test_replay_paces_events_by_exchange_time_and_speed(tmp_path: Path, speed: float) -> None:
    events = make_events(5, symbols=("BTCUSDT",), step_ns=2 * 10**9)  # 2 s apart
    record(tmp_path, events)
    stop = _RecordingStop()
    ReplaySource(tmp_path, speed=speed, clock_ns=lambda: T0).run(lambda e: None, stop)
    # The clock stands still, so each wait is the full distance from the start, scaled by the speed.
    assert stop.waits == pytest.approx([2 * k / speed for k in range(1, 5)])


def test_replay_stops_while_waiting(tmp_path: Path) -> None:
    record(tmp_path, make_events(5, symbols=("BTCUSDT",), step_ns=3600 * 10**9))
    stop = threading.Event()
    out: list[market_pb2.MarketEvent] = []

    def emit(event: market_pb2.MarketEvent) -> None:
        out.append(event)
        stop.set()  # the next event is an hour away in real time

    ReplaySource(tmp_path, speed=1.0).run(emit, stop)
    assert len(out) == 1


def test_replay_without_recordings_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(NoRecordingError, match=str(tmp_path)):
        ReplaySource(tmp_path, ["BTCUSDT"]).run(lambda e: None, threading.Event())

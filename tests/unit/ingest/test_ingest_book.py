"""The Binance spot local-order-book procedure, step by step, with no I/O."""

from __future__ import annotations

from quantumedge.ingest.binance.book import DepthDiff, DepthSnapshot, DepthSync, LocalOrderBook, Outcome, SyncState

SYM = "BTCUSDT"


def diff(first: int, last: int, bids=(), asks=()) -> DepthDiff:
    return DepthDiff(SYM, first, last, list(bids), list(asks), event_time_ms=1)


SNAP = DepthSnapshot(100, bids=[(10.0, 1.0), (9.0, 2.0)], asks=[(11.0, 1.0), (12.0, 3.0)])


def test_diffs_are_buffered_until_the_snapshot_arrives() -> None:
    sync = DepthSync(SYM)
    assert sync.state is SyncState.WAITING_FOR_DIFF
    assert sync.on_diff(diff(95, 98)) is Outcome.BUFFERED
    assert sync.on_diff(diff(99, 101, bids=[(10.0, 5.0)])) is Outcome.BUFFERED
    assert sync.on_diff(diff(102, 102, asks=[(11.0, 0.0)])) is Outcome.BUFFERED
    assert sync.state is SyncState.WAITING_FOR_SNAPSHOT and not sync.synced
    assert sync.on_snapshot(SNAP) is Outcome.APPLIED
    # 95..98 dropped (u <= lastUpdateId); 99..101 bridges (U <= 101 <= u); 102 follows.
    assert sync.state is SyncState.SYNCED
    assert sync.book.last_update_id == 102
    assert sync.book.top(5) == ([(10.0, 5.0), (9.0, 2.0)], [(12.0, 3.0)])
    assert sync.applied == 2


def test_snapshot_older_than_the_first_buffered_diff_is_stale() -> None:
    sync = DepthSync(SYM)
    sync.on_diff(diff(150, 151))
    assert sync.on_snapshot(SNAP) is Outcome.STALE_SNAPSHOT  # 100 < U=150: fetch again
    assert sync.state is SyncState.WAITING_FOR_SNAPSHOT and sync.stale_snapshots == 1
    assert sync.on_snapshot(DepthSnapshot(150, [(10.0, 1.0)], [(11.0, 1.0)])) is Outcome.APPLIED
    assert sync.book.last_update_id == 151


def test_a_buffer_that_does_not_bridge_the_snapshot_is_a_gap() -> None:
    sync = DepthSync(SYM)
    sync.on_diff(diff(90, 95))
    sync.on_diff(diff(103, 110))  # 96..102 never arrived
    assert sync.on_snapshot(SNAP) is Outcome.GAP
    assert sync.state is SyncState.WAITING_FOR_SNAPSHOT and sync.gaps == 1
    assert sync.buffered == 1  # the diff that showed the gap starts the new buffer


def test_snapshot_newer_than_every_buffered_diff_waits_for_a_bridging_diff() -> None:
    sync = DepthSync(SYM)
    sync.on_diff(diff(90, 95))
    assert sync.on_snapshot(SNAP) is Outcome.APPLIED
    assert sync.state is SyncState.BRIDGING
    assert sync.on_diff(diff(96, 100)) is Outcome.IGNORED
    assert sync.on_diff(diff(98, 104, asks=[(10.5, 1.0)])) is Outcome.APPLIED  # U <= 101 <= u
    assert sync.book.last_update_id == 104 and sync.book.asks.top(1) == [(10.5, 1.0)]


def test_each_diff_must_follow_the_previous_one() -> None:
    sync = DepthSync(SYM)
    sync.on_diff(diff(99, 101))
    sync.on_snapshot(SNAP)
    assert sync.on_diff(diff(102, 105)) is Outcome.APPLIED
    assert sync.on_diff(diff(104, 105)) is Outcome.IGNORED  # already applied
    assert sync.on_diff(diff(107, 108)) is Outcome.GAP  # 106 missing
    assert not sync.synced and sync.book.depth_levels() == 0


def test_overlapping_diff_after_sync_is_a_gap() -> None:
    sync = DepthSync(SYM)
    sync.on_diff(diff(99, 101))
    sync.on_snapshot(SNAP)
    assert sync.on_diff(diff(101, 103)) is Outcome.GAP  # U must be exactly previous u + 1


def test_zero_quantity_removes_a_level_and_unknown_removals_are_fine() -> None:
    book = LocalOrderBook()
    book.reset(SNAP)
    book.apply(diff(101, 101, bids=[(10.0, 0.0), (8.5, 0.0)], asks=[(11.0, 0.0), (13.0, 4.0)]))
    assert book.top(10) == ([(9.0, 2.0)], [(12.0, 3.0), (13.0, 4.0)])
    assert book.depth_levels() == 1


def test_buffer_overflow_restarts_the_procedure() -> None:
    sync = DepthSync(SYM, max_buffered=3)
    for i in range(3):
        assert sync.on_diff(diff(100 + i, 100 + i)) is Outcome.BUFFERED
    assert sync.on_diff(diff(103, 103)) is Outcome.OVERFLOW
    assert sync.buffered == 1


def test_late_snapshot_after_a_restart_is_ignored() -> None:
    sync = DepthSync(SYM)
    sync.on_diff(diff(99, 101))
    sync.restart()
    assert sync.on_snapshot(SNAP) is Outcome.IGNORED
    assert sync.state is SyncState.WAITING_FOR_DIFF

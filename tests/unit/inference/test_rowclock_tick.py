"""RowClock.tick: the lockstep present decides the rows due at `now` before that moment's events, and they are the
same rows, with the same features, as the event-driven path decides (only the moment moves, earlier in the run)."""

from __future__ import annotations

from quantumedge.inference.domain.features import OnlineFeatures
from quantumedge.inference.domain.ordering import ReorderBuffer
from quantumedge.inference.domain.rowclock import RowClock
from quantumedge.ingest.synthetic import SyntheticMarket

START_NS = 1_700_000_000_000_000_000
STEPS = 400


def _rowclock() -> RowClock:
    return RowClock(OnlineFeatures(), ReorderBuffer(), lateness_ns=250_000_000)


def _decide(use_tick: bool) -> tuple[list[tuple], int]:
    rc, rows, by_tick = _rowclock(), [], 0
    for step in SyntheticMarket(symbols=["BTCUSDT", "ETHUSDT"], start_ns=START_NS).steps(STEPS):
        now = max(ev.exchange_time_ns for ev in step)  # lockstep's present for the step
        if use_tick:
            due = rc.tick(now)
            by_tick += len(due)
            rows += due
        for ev in step:
            rows += rc.push(ev, now)
    return [(r.symbol, r.time_ns, tuple(r.values)) for r in rows], by_tick


def test_tick_decides_the_same_rows_with_the_same_features_as_the_event_path() -> None:
    by_events, _ = _decide(use_tick=False)
    by_ticks, decided_by_tick = _decide(use_tick=True)
    assert len(by_events) > 100
    assert sorted(by_ticks) == sorted(by_events)
    assert decided_by_tick == len(by_ticks)  # every row was due at a tick, before the next step's events


def test_tick_leaves_rows_not_yet_due_and_rows_not_yet_closed() -> None:
    rc = _rowclock()
    n = 150  # past the features' warm-up: every boundary makes a row
    for step in SyntheticMarket(symbols=["BTCUSDT"], start_ns=START_NS).steps(n):
        for ev in step:
            rc.push(ev, ev.exchange_time_ns)
    boundary = START_NS + n * 10**9  # the last step's end: its depth update closes this row
    assert rc.tick(boundary + rc.lateness_ns - 1) == []  # 1 ns before its decision time
    assert [r.time_ns for r in rc.tick(boundary + rc.lateness_ns)] == [boundary]
    # The next boundary's events are not in yet: however late the present, that row is not closed, not decided.
    assert rc.tick(boundary + 10**9 + rc.lateness_ns) == []

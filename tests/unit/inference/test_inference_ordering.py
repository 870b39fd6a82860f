"""The reorder buffer gives the feature builder each symbol's events in canonical order, whatever the topics did."""

from __future__ import annotations

import numpy as np

from quantumedge.inference.domain.features import OnlineFeatures
from quantumedge.inference.domain.ordering import ReorderBuffer
from quantumedge.ingest.synthetic import SyntheticMarket
from quantumedge.v1 import market_pb2

MS = 1_000_000


def _topic_grouped(events, chunk: int):
    """What a consumer sees while catching up: per chunk, all book records, then depth, then trades."""
    for i in range(0, len(events), chunk):
        part = events[i : i + chunk]
        for kind in ("top_of_book", "depth", "trade"):
            yield from (e for e in part if e.WhichOneof("payload") == kind)


def _rows(events) -> dict[str, list[list[float]]]:
    builder = OnlineFeatures()
    rows: dict[str, list[list[float]]] = {}
    for ev in events:
        for r in builder.update(ev):
            rows.setdefault(r.symbol, []).append(r.values)
    return rows


def test_topic_grouped_arrival_gives_the_same_rows_as_exchange_order() -> None:
    events = list(SyntheticMarket(["BTCUSDT", "ETHUSDT"], seed=9).events(600))
    buf = ReorderBuffer(max_hold_ns=10**18)  # never time out: the watermark alone must restore the order
    released = []
    for ev in _topic_grouped(events, chunk=700):
        released.extend(buf.push(ev, now_ns=0))
    released.extend(buf.drain())
    assert len(released) == len(events)
    assert buf.stats.forced == 0 and buf.stats.late_dropped == 0
    expected, got = _rows(events), _rows(released)
    assert set(expected) == set(got) == {"BTCUSDT", "ETHUSDT"}
    for symbol in expected:  # symbols interleave differently; each symbol's own rows must be identical
        np.testing.assert_array_equal(np.array(got[symbol]), np.array(expected[symbol]))


def test_a_quiet_stream_does_not_stall_the_others_past_the_hold_time() -> None:
    events = [e for e in SyntheticMarket(["BTCUSDT"], seed=1).events(5) if not e.HasField("trade")]
    buf = ReorderBuffer(max_hold_ns=50 * MS, idle_ns=50 * MS)
    out = []
    for ev in events:
        out.extend(buf.push(ev, now_ns=0))
    assert out == []  # no trade seen yet: the watermark cannot pass
    assert buf.flush_due(now_ns=10 * MS) == []
    out = buf.flush_due(now_ns=60 * MS)
    assert [e.exchange_time_ns for e in out] == sorted(e.exchange_time_ns for e in events)
    assert buf.stats.forced == len(events)


def test_nothing_is_forced_while_a_replay_or_backlog_keeps_records_coming() -> None:
    events = [e for e in SyntheticMarket(["BTCUSDT"], seed=1).events(50) if not e.HasField("trade")]
    buf = ReorderBuffer(max_hold_ns=50 * MS, idle_ns=20 * MS)
    for i, ev in enumerate(events):  # exchange times far from the wall clock, records 10 ms apart
        assert buf.push(ev, now_ns=i * 10 * MS) == []
    assert buf.stats.forced == 0
    end = len(events) * 10 * MS
    assert buf.flush_due(now_ns=end) == []  # not idle long enough: the trades may be next in line
    assert len(buf.flush_due(now_ns=end + 60 * MS)) == len(events)  # idle, and held past the hold: released


def test_a_live_symbol_does_not_wait_longer_than_the_hold_for_a_quiet_stream() -> None:
    start = 1_700_000_000_000_000_000
    # 100 ms steps: records come far more often than the hold, so "the first push after the hold" is close.
    market = SyntheticMarket(["BTCUSDT"], seed=1, start_ns=start, step_ms=100)
    events = [e for e in market.events(20) if not e.HasField("trade")]
    buf = ReorderBuffer(max_hold_ns=150 * MS, idle_ns=10**12)
    waited = []
    for ev in events:  # paced in real time: the wall clock is the exchange clock (+1 ms)
        now = ev.exchange_time_ns + MS
        waited += [now - (out.exchange_time_ns + MS) for out in buf.push(ev, now_ns=now)]
    assert len(waited) > 20 and buf.stats.forced == len(waited)
    assert min(waited) >= 150 * MS and max(waited) <= 250 * MS  # released with the first push after the hold


def test_late_trades_are_kept_stale_books_dropped_duplicates_dropped() -> None:
    events = list(SyntheticMarket(["BTCUSDT"], seed=2).events(20))
    buf = ReorderBuffer(max_hold_ns=10**18)
    for ev in events:
        buf.push(ev, now_ns=0)
    buf.drain()
    first_trade = next(e for e in events if e.HasField("trade"))
    first_book = next(e for e in events if e.HasField("top_of_book"))
    first_depth = next(e for e in events if e.HasField("depth"))
    assert buf.push(first_trade, 0) == []  # same id, same time: a redelivery
    late = market_pb2.MarketEvent()
    late.CopyFrom(first_trade)
    late.trade.trade_id = 10_000
    assert buf.push(late, 0) == [late]  # a trade nobody saw yet: still part of the flow
    assert buf.push(first_book, 0) == [] and buf.push(first_depth, 0) == []
    assert buf.stats.duplicates == 1 and buf.stats.late_dropped == 2 and buf.stats.late_released == 1


def test_time_going_backwards_restarts_the_symbol_with_a_gap() -> None:
    buf = ReorderBuffer()
    old = list(SyntheticMarket(["BTCUSDT"], seed=3).events(20))
    for ev in old:
        buf.push(ev, now_ns=1)
    restart = next(iter(SyntheticMarket(["BTCUSDT"], seed=3, start_ns=1_000_000_000_000_000_000).events(1)))
    out = buf.push(restart, now_ns=1)
    kinds = [e.WhichOneof("payload") for e in out]
    gap_at = kinds.index("gap")
    assert out[gap_at].gap.reason == "time went backwards" and buf.stats.resets == 1
    assert all(e.exchange_time_ns > restart.exchange_time_ns for e in out[:gap_at])  # the old held events first
    assert restart not in out and buf.buffered() == 1  # the new run starts afresh, waiting for its watermark

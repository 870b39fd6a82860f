"""bench/compare/spec.py: hftbacktest's venue model is QuantumEdge's paper venue, and the shared frame count."""

from __future__ import annotations

import pytest

from bench.compare import spec as s
from quantumedge.execution.settings import ExecutionSettings


def test_spec_takes_the_paper_venue_defaults() -> None:
    venue = ExecutionSettings()
    got = s.hbt_spec(venue, target_orders=42, qty=0.001)
    assert got["entry_ns"] == int(venue.paper_latency_ms * 1_000_000)
    assert got["feed_ns"] == int(venue.paper_feed_latency_ms * 1_000_000)
    assert got["response_ns"] == 0
    assert got["taker_fee"] == venue.paper_taker_fee_bps / 10_000
    assert got["maker_fee"] == venue.paper_maker_fee_bps / 10_000
    assert got["tick"] == float(venue.paper_tick_size) and got["lot"] == float(venue.paper_step_size)
    assert got["target_orders"] == 42 and got["qty"] == 0.001


def test_spec_follows_changed_latencies_and_fees() -> None:
    venue = ExecutionSettings(paper_latency_ms=25.0, paper_feed_latency_ms=10.0, paper_taker_fee_bps=7.5)
    got = s.hbt_spec(venue, target_orders=-3, qty=0.002)
    assert (got["entry_ns"], got["feed_ns"]) == (25_000_000, 10_000_000)
    assert got["taker_fee"] == pytest.approx(0.00075)
    assert got["target_orders"] == 0


def test_converted_frames_leave_out_book_ticker_and_dropped_diffs() -> None:
    frames = {"depth@100ms": 100, "bookTicker": 500, "snapshot": 1, "trade": 40}
    assert s.converted_frames(frames, dropped_diffs=3) == 138


def test_per_cpu_s_refuses_no_time() -> None:
    assert s.per_cpu_s(10, 2.0) == 5.0
    with pytest.raises(ValueError):
        s.per_cpu_s(10, 0.0)

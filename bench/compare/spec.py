"""Pure helpers of `make bench-compare`: the hftbacktest run's venue model taken from QuantumEdge's execution
settings, and the per-frame rate both engines are compared on."""

from __future__ import annotations

from typing import Protocol

MS_NS = 1_000_000
BOOK_TICKER = "bookTicker"


class PaperVenue(Protocol):
    paper_latency_ms: float
    paper_feed_latency_ms: float
    paper_maker_fee_bps: float
    paper_taker_fee_bps: float
    paper_tick_size: str
    paper_step_size: str


def hbt_spec(venue: PaperVenue, target_orders: int, qty: float) -> dict:
    """hbt_run.py's SPEC_JSON: the same latencies, fees, tick and lot as QuantumEdge's paper venue.

    QuantumEdge's entry latency delays the order to the book of t + latency and its fills reach the strategy
    at once, so hftbacktest's response latency is 0; its feed latency is a constant on top of exchange time."""
    return {
        "entry_ns": int(venue.paper_latency_ms * MS_NS),
        "response_ns": 0,
        "feed_ns": int(venue.paper_feed_latency_ms * MS_NS),
        "maker_fee": venue.paper_maker_fee_bps / 10_000,
        "taker_fee": venue.paper_taker_fee_bps / 10_000,
        "tick": float(venue.paper_tick_size),
        "lot": float(venue.paper_step_size),
        "qty": qty,
        "target_orders": max(0, int(target_orders)),
    }


def converted_frames(frames: dict[str, int], dropped_diffs: int) -> int:
    """Capture frames hftbacktest is fed: the snapshot, the depth diffs after it and the trades (bookTicker
    frames have no exchange time and no place in its L2 format)."""
    return sum(n for kind, n in frames.items() if kind != BOOK_TICKER) - dropped_diffs


def per_cpu_s(count: int, cpu_s: float) -> float:
    if cpu_s <= 0:
        raise ValueError(f"no CPU time measured ({cpu_s}): nothing to rate")
    return count / cpu_s

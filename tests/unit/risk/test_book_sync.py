"""Entries wait for risk's book to reach their signal's market time; exits never wait (risk/book_sync.py)."""

from __future__ import annotations

from quantumedge.risk.book_sync import BOOK_BEHIND_SIGNAL, SIGNAL_BEHIND_BOOK, SIGNAL_SUPERSEDED
from quantumedge.risk.domain.engine import RiskEngine
from quantumedge.risk.domain.reasons import primary_code
from quantumedge.v1 import common_pb2, execution_pb2, risk_pb2
from tests.support.risk_builders import NS, FakeClock, book, quiet_settings, report, signal, snapshot

MS = 1_000_000


def engine_at(clock: FakeClock, **overrides: object) -> RiskEngine:
    """Execution state known, BTCUSDT's book at clock.now around 50,000."""
    engine = RiskEngine(quiet_settings(**overrides))
    engine.on_report(snapshot(clock.now), clock.now)
    engine.on_market(book("BTCUSDT", 49_999.0, 50_001.0, clock.now), clock.now)
    return engine


def test_an_entry_ahead_of_the_book_is_held_then_priced_on_the_book_that_caught_up() -> None:
    clock = FakeClock()
    engine = engine_at(clock)
    book_t = clock.now
    # The signal was decided on a market 2 s (market time) newer than risk's book, after a 1% rise.
    sig = signal(t_ns=book_t + 2 * NS, mid=50_500.0)
    assert engine.on_signal(sig, clock.now) == []
    assert len(engine.book_sync) == 1 and engine.counters.signals_seen == 0
    # The book moves on, still 1 s short of the signal: not yet.
    engine.on_market(book("BTCUSDT", 50_299.0, 50_301.0, book_t + 1 * NS), clock.now)
    assert engine.release_held("BTCUSDT", clock.now) == []
    # Within the allowance (250 ms by default) of the signal: decided on this book.
    engine.on_market(book("BTCUSDT", 50_499.0, 50_501.0, book_t + 2 * NS - 100 * MS), clock.now)
    decided = engine.release_held("BTCUSDT", clock.now)
    assert [s.signal_id for s, _ in decided] == [sig.signal_id]
    decision = decided[0][1]
    assert decision.approved and decision.intent.kind == risk_pb2.INTENT_KIND_ENTRY
    intent = decision.intent
    assert intent.reference_price == 50_501.0  # the fresh ask, not the stale 50,001
    assert intent.stop_loss_price < 50_499.0 < 50_501.0 < intent.take_profit_price
    assert len(engine.book_sync) == 0 and engine.decisions.for_source(sig.signal_id) is decision


def test_a_book_that_never_catches_up_refuses_the_signal_with_its_code() -> None:
    clock = FakeClock()
    engine = engine_at(clock, book_sync_max_wait_ns=2 * NS)
    sig = signal(t_ns=clock.now + 1 * NS)
    assert engine.on_signal(sig, clock.now) == []
    clock.advance(1.0)
    assert engine.expire_held(clock.now) == []  # within the wall bound
    clock.advance(1.5)  # the feed stalled: nothing came for 2.5 s of risk's clock
    decided = engine.expire_held(clock.now)
    assert [primary_code(d) for _, d in decided] == [BOOK_BEHIND_SIGNAL]
    assert not decided[0][1].approved and not decided[0][1].HasField("intent")
    assert engine.decisions.for_source(sig.signal_id) is decided[0][1]
    assert engine.ledger.pending == {}  # nothing approved, nothing counted as exposure


def test_a_book_too_far_behind_refuses_at_once() -> None:
    clock = FakeClock()
    engine = engine_at(clock, book_sync_max_lag_ns=5 * NS)
    decided = engine.on_signal(signal(t_ns=clock.now + 6 * NS), clock.now)
    assert [primary_code(d) for _, d in decided] == [BOOK_BEHIND_SIGNAL]
    assert len(engine.book_sync) == 0


def test_exits_are_never_held() -> None:
    clock = FakeClock()
    engine = engine_at(clock, min_hold_ns=0)
    engine.on_report(report("BTCUSDT", clock.now, position_qty=0.01, intent_id="e1", quantity=0.01), clock.now)
    decided = engine.on_signal(signal(p_up=0.2, t_ns=clock.now + 3 * NS), clock.now)
    assert len(decided) == 1
    decision = decided[0][1]
    assert decision.approved and decision.intent.kind == risk_pb2.INTENT_KIND_EXIT
    assert decision.intent.side == common_pb2.SIDE_SELL and len(engine.book_sync) == 0


def test_a_refusal_is_not_held_either() -> None:
    """Only an entry that would be priced waits: a signal the policy refuses is refused now."""
    clock = FakeClock()
    engine = engine_at(clock)
    decided = engine.on_signal(signal(p_up=0.51, t_ns=clock.now + 3 * NS), clock.now)
    assert len(decided) == 1 and not decided[0][1].approved and len(engine.book_sync) == 0


def test_only_the_newest_signal_per_symbol_and_horizon_waits_and_the_store_is_bounded() -> None:
    clock = FakeClock()
    engine = engine_at(clock, book_sync_max_held=2)
    engine.on_market(book("ETHUSDT", 2_999.9, 3_000.1, clock.now), clock.now)
    engine.on_market(book("SOLUSDT", 99.9, 100.1, clock.now), clock.now)
    first = signal(t_ns=clock.now + 1 * NS)
    assert engine.on_signal(first, clock.now) == []
    assert engine.on_signal(first, clock.now) == []  # a redelivery replaces itself, refuses nothing
    second = signal(t_ns=clock.now + 2 * NS)
    decided = engine.on_signal(second, clock.now)
    assert [(s.signal_id, primary_code(d)) for s, d in decided] == [(first.signal_id, SIGNAL_SUPERSEDED)]
    assert engine.on_signal(signal("ETHUSDT", t_ns=clock.now + 1 * NS, mid=3_000.0), clock.now) == []
    decided = engine.on_signal(signal("SOLUSDT", t_ns=clock.now + 1 * NS, mid=100.0), clock.now)
    # Three symbols, room for two: the oldest held (BTCUSDT's second) is refused.
    assert [(s.signal_id, primary_code(d)) for s, d in decided] == [(second.signal_id, BOOK_BEHIND_SIGNAL)]
    assert len(engine.book_sync) == 2


def test_the_hold_can_be_turned_off_and_decide_never_holds() -> None:
    clock = FakeClock()
    off = engine_at(clock, book_sync_allowance_ns=-1)
    assert off.on_signal(signal(t_ns=clock.now + 3 * NS), clock.now)[0][1].approved
    on = engine_at(clock)
    assert on.decide(signal(t_ns=clock.now + 3 * NS), clock.now).approved  # the backtester's path


def test_execution_refusing_the_entry_releases_entry_pending_at_once() -> None:
    """Execution refuses an entry it will not send (PROTECTION_OFF_MARKET and every pre-send check) with a
    REJECTED order report under the intent's id: the pending entry goes at once, not after the 30 s TTL."""
    clock = FakeClock()
    engine = engine_at(clock)
    first = engine.decide(signal(t_ns=clock.now), clock.now)
    assert first.approved and first.intent.intent_id in engine.ledger.pending
    second = engine.decide(signal(t_ns=clock.now), clock.now)
    assert primary_code(second) == "entry_pending"
    clock.advance(0.5)
    refused = report(
        "BTCUSDT",
        clock.now,
        intent_id=first.intent.intent_id,
        status=execution_pb2.ORDER_STATUS_REJECTED,
        quantity=first.intent.quantity,
    )
    refused.order.reject_code = "PROTECTION_OFF_MARKET"
    engine.on_report(refused, clock.now)
    assert engine.ledger.pending == {}
    assert engine.decide(signal(t_ns=clock.now), clock.now).approved


def test_an_entry_on_a_signal_the_book_has_moved_past_is_refused() -> None:
    clock = FakeClock()
    engine = engine_at(clock, book_sync_max_signal_lag_ns=5 * NS)
    decided = engine.on_signal(signal(t_ns=clock.now - 6 * NS), clock.now)
    assert [primary_code(d) for _, d in decided] == [SIGNAL_BEHIND_BOOK]
    assert engine.on_signal(signal(t_ns=clock.now - 4 * NS), clock.now)[0][1].approved

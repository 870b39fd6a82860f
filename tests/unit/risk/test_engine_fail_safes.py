"""Risk engine fail-safes a trader would lose money on without: oversized manual sells, caps counted at
the market, double exits, resting entries and rebuilt history counted, future-stamped events, limits that
would switch a guard off."""

from __future__ import annotations

import pydantic
import pytest

from quantumedge.risk.domain.engine import RiskEngine
from quantumedge.risk.domain.limit_config import InvalidLimitsError, default_limits, merge_limits
from quantumedge.risk.domain.reasons import decision_codes, primary_code
from quantumedge.risk.domain.state import RiskLedger
from quantumedge.risk.settings import RiskSettings
from quantumedge.v1 import execution_pb2, risk_pb2
from tests.support.risk_builders import NS, SELL, FakeClock, book, report, signal
from tests.unit.risk.test_engine import hold, ready_engine


def manual(intent_id: str, side: int, qty: float, **fields: object) -> risk_pb2.OrderIntent:
    return risk_pb2.OrderIntent(intent_id=intent_id, symbol="BTCUSDT", side=side, quantity=qty, **fields)


def test_a_manual_sell_larger_than_the_position_is_refused_when_shorts_are_off() -> None:
    clock = FakeClock()
    engine = ready_engine(clock)  # allow_short defaults to False
    hold(engine, clock, qty=0.01)
    oversell = engine.review(manual("m-1", SELL, 0.019), clock.now)
    assert not oversell.approved
    assert "allow_short" in decision_codes(oversell)
    assert engine.review(manual("m-2", SELL, 0.01), clock.now).approved  # closing what is held is fine


def test_a_sell_limit_below_the_market_counts_at_the_market_for_the_caps() -> None:
    clock = FakeClock()
    engine = ready_engine(clock, allow_short=True)
    lowball = manual("m-1", SELL, 1.0, order_type=risk_pb2.ORDER_TYPE_LIMIT, limit_price=1.0)
    decision = engine.review(lowball, clock.now)
    assert not decision.approved
    # 1.0 at the 1.0 limit price would fit the 1 000 cap; 1.0 at the 50 000 market does not.
    assert "max_order_notional" in decision_codes(decision)


def test_two_manual_exits_cannot_close_one_position_twice() -> None:
    clock = FakeClock()
    engine = ready_engine(clock)
    hold(engine, clock, qty=0.01)
    assert engine.review(manual("x-1", SELL, 0.01, kind=risk_pb2.INTENT_KIND_EXIT), clock.now).approved
    second = engine.review(manual("x-2", SELL, 0.01, kind=risk_pb2.INTENT_KIND_EXIT), clock.now)
    assert not second.approved
    assert primary_code(second) == "exit_exceeds_position"  # the first exit, still pending, closes it all


def test_a_resting_entry_keeps_counting_until_execution_says_it_is_done() -> None:
    clock = FakeClock()
    engine = ready_engine(clock, entry_order_type="limit", entry_time_in_force="GTC")
    first = engine.decide(signal("BTCUSDT", t_ns=clock.now), clock.now)
    assert first.approved
    working = report(
        "BTCUSDT",
        clock.now,
        intent_id=first.intent.intent_id,
        status=execution_pb2.ORDER_STATUS_NEW,
        quantity=first.intent.quantity,
    )
    engine.on_report(working, clock.now)
    clock.advance(120)  # far past the pending TTL (30 s): the order still rests on the venue
    engine.on_market(book("BTCUSDT", 49_999.0, 50_001.0, clock.now), clock.now)
    engine.on_report(report("BTCUSDT", clock.now, position_qty=0.0), clock.now)  # heartbeat: still flat
    again = engine.decide(signal("BTCUSDT", t_ns=clock.now), clock.now)
    assert not again.approved and "entry_pending" in [r.split(":")[0] for r in again.reasons]
    assert engine.ledger.symbol_exposure("BTCUSDT", clock.now, engine.settings.pending_intent_ttl_ns) > 0
    done = report(
        "BTCUSDT",
        clock.now,
        intent_id=first.intent.intent_id,
        status=execution_pb2.ORDER_STATUS_CANCELED,
        quantity=first.intent.quantity,
    )
    engine.on_report(done, clock.now)
    assert engine.ledger.live_pending(clock.now, engine.settings.pending_intent_ttl_ns) == []


def test_working_orders_are_rebuilt_from_history_after_a_restart() -> None:
    t = FakeClock().now
    ledger = RiskLedger(10_000.0)
    resting = report("BTCUSDT", t, intent_id="gtc-1", status=execution_pb2.ORDER_STATUS_NEW, quantity=0.02)
    resting.order.price = 49_000.0
    finished = report("BTCUSDT", t, intent_id="ioc-1", status=execution_pb2.ORDER_STATUS_EXPIRED, quantity=0.02)
    ledger.replay([resting, finished])
    pending = ledger.live_pending(t + 3600 * NS, 30 * NS)
    assert [p.intent_id for p in pending] == ["gtc-1"]
    assert ledger.symbol_exposure("BTCUSDT", t + 3600 * NS, 30 * NS) == pytest.approx(0.02 * 49_000.0)


def test_one_future_stamped_event_does_not_freeze_the_book_or_the_stale_guard() -> None:
    clock = FakeClock()
    engine = ready_engine(clock)
    engine.on_market(book("BTCUSDT", 49_999.0, 50_001.0, clock.now + 3600 * NS), clock.now)  # an hour ahead
    clock.advance(1)
    engine.on_market(book("BTCUSDT", 44_999.0, 45_001.0, clock.now), clock.now)
    assert engine.market.get("BTCUSDT").mid == 45_000.0  # the real update is not refused as "older"
    clock.advance(600)  # then the feed dies
    engine.on_report(report("BTCUSDT", clock.now, position_qty=0.0), clock.now)
    dead = engine.decide(signal("BTCUSDT", t_ns=clock.now), clock.now)
    assert not dead.approved and "stale_market_data" in decision_codes(dead)


def test_a_rebuilt_history_marks_positions_at_their_newest_price_not_their_first() -> None:
    t = FakeClock().now
    old = report("BTCUSDT", t - 30 * 86_400 * NS, position_qty=0.1, avg_price=30_000.0)
    old.position.mark_price = 30_000.0
    new = report("BTCUSDT", t, position_qty=0.1, avg_price=30_000.0)
    new.position.mark_price = 50_000.0
    ledger = RiskLedger(10_000.0)
    ledger.replay([old, new])
    assert ledger.mark("BTCUSDT") == 50_000.0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("take_profit_bps", 10_000.0, "take_profit_bps must be < 10000"),
        ("max_data_age_ns", 365 * 86_400 * NS, "max_data_age_ns must be <= 1 hour"),
        ("order_window_ns", 1, "order_window_ns must be >= 1 s"),
    ],
)
def test_limits_that_would_switch_a_guard_off_quietly_are_refused(field: str, value: float, message: str) -> None:
    current = default_limits(RiskSettings())
    with pytest.raises(InvalidLimitsError, match=message):
        merge_limits(current, risk_pb2.RiskLimits(**{field: value}), [field])


def test_a_misspelt_automatic_halt_fails_at_start_up() -> None:
    with pytest.raises(pydantic.ValidationError):
        RiskSettings(halt_on=["daily_loss"])


def test_a_crossed_book_and_an_undated_signal_approve_nothing() -> None:
    clock = FakeClock()
    engine = ready_engine(clock)
    undated = signal("BTCUSDT", t_ns=clock.now)
    undated.created_time_ns = 0
    refused = engine.decide(undated, clock.now)
    assert not refused.approved and primary_code(refused) == "stale_signal"
    engine.on_market(book("BTCUSDT", 50_500.0, 49_500.0, clock.now), clock.now)
    crossed = engine.decide(signal("BTCUSDT", t_ns=clock.now), clock.now)
    assert not crossed.approved and "max_spread_bps" in decision_codes(crossed)
    quote = engine.market.get("BTCUSDT")
    assert quote.bid >= quote.ask  # refused for being crossed, whatever the spread limit


def test_a_resume_with_nothing_halted_acknowledges_nothing() -> None:
    clock = FakeClock()
    engine: RiskEngine = ready_engine(clock)
    engine.ledger.loss_streak, engine.ledger.peak_equity = 3, 12_000.0
    engine.resume(clock.now)
    assert engine.ledger.loss_streak == 3 and engine.ledger.peak_equity == 12_000.0

"""The boundary checks every consumer runs (shared/bounds): each poisoned value is refused with a reason code."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from quantumedge.execution.domain.orders import Fill
from quantumedge.execution.engine import fill_problem
from quantumedge.shared import bounds
from quantumedge.v1 import execution_pb2, market_pb2, risk_pb2

POISON = [math.nan, math.inf, -math.inf, 1e300, -5.0, float(2**63 - 1)]
T = 1_767_225_600 * 10**9


def _decision(**intent: float) -> risk_pb2.RiskDecision:
    fields = {"intent_id": "i", "symbol": "BTCUSDT", "quantity": 0.01, "reference_price": 50_000.0} | intent
    return risk_pb2.RiskDecision(approved=True, decided_time_ns=T, intent=risk_pb2.OrderIntent(**fields))


@pytest.mark.parametrize("value", POISON)
@pytest.mark.parametrize("field", ["quantity", "take_profit_price", "stop_loss_price", "trailing_stop_bps"])
def test_decisions_with_poisoned_intents_are_refused(field: str, value: float) -> None:
    problem = bounds.check_decision(_decision(**{field: value}))
    assert problem is not None and problem.code in (bounds.NON_FINITE, bounds.OUT_OF_RANGE, bounds.NOT_POSITIVE)


def test_a_time_stop_of_2_63_minus_1_is_refused_and_a_sane_decision_passes() -> None:
    assert bounds.check_decision(_decision(time_stop_ns=2**63 - 1)).code == bounds.BAD_TIME
    assert bounds.check_decision(_decision(time_stop_ns=600 * 10**9)) is None
    bad_time = _decision()
    bad_time.decided_time_ns = 2**63 - 1
    assert bounds.check_decision(bad_time).code == bounds.BAD_TIME


@pytest.mark.parametrize("value", POISON)
def test_market_events_with_poisoned_values_are_refused(value: float) -> None:
    trade = market_pb2.MarketEvent(
        symbol="BTCUSDT", exchange_time_ns=T, trade=market_pb2.Trade(price=value, quantity=1)
    )
    assert bounds.check_market(trade) is not None
    qty = market_pb2.MarketEvent(
        symbol="BTCUSDT", exchange_time_ns=T, trade=market_pb2.Trade(price=1.0, quantity=value)
    )
    assert bounds.check_market(qty) is not None


def test_a_price_far_off_the_last_good_one_is_refused_until_a_gap_re_anchors() -> None:
    guard = bounds.MarketGuard()

    def trade(price: float) -> market_pb2.MarketEvent:
        return market_pb2.MarketEvent(
            symbol="BTCUSDT", exchange_time_ns=T, trade=market_pb2.Trade(price=price, quantity=1)
        )

    assert guard.admit(trade(50_000.0)) is None
    assert guard.admit(trade(50_000_000.0)).code == bounds.PRICE_JUMP  # 1000x: finite, in range, refused
    assert guard.admit(trade(-1e308)).code == bounds.NOT_POSITIVE
    assert guard.admit(trade(50_100.0)) is None  # the last good price stayed
    gap = market_pb2.MarketEvent(symbol="BTCUSDT", exchange_time_ns=T, gap=market_pb2.GapMarker(stream="trade"))
    assert guard.admit(gap) is None and guard.admit(trade(400_000.0)) is None


@pytest.mark.parametrize("value", POISON)
def test_reports_with_poisoned_money_are_refused(value: float) -> None:
    for field in ("realized_pnl_delta", "equity", "fee_delta"):
        report = execution_pb2.ExecutionReport(time_ns=T, **{field: value})
        if field == "fee_delta" and value == -5.0:
            continue  # a rebate is a negative fee
        if field == "realized_pnl_delta" and value == -5.0:
            continue  # a loss
        assert bounds.check_report(report) is not None, field


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "sNaN", "1e300", "-5"])
def test_venue_fills_with_poisoned_values_are_refused(value: str) -> None:
    bad = Decimal(value)
    for fill in (
        Fill("c", "t", bad, Decimal("0.01"), Decimal(0), "USDT", Decimal(0), Decimal(0), False, T),
        Fill("c", "t", Decimal(50_000), bad, Decimal(0), "USDT", Decimal(0), Decimal(0), False, T),
    ):
        assert fill_problem(fill) is not None
    ok = Fill(
        "c",
        "t",
        Decimal(50_000),
        Decimal("0.01"),
        Decimal("0.00001"),
        "BTC",
        Decimal("0.5"),
        Decimal("0.00001"),
        False,
        T,
    )
    assert fill_problem(ok) is None


def test_request_strings_and_floats_are_bounded() -> None:
    assert bounds.check_request(risk_pb2.HaltRequest(reason="x" * 1_000_000)).code == bounds.TOO_LONG
    req = risk_pb2.ReviewOrderRequest(intent=risk_pb2.OrderIntent(quantity=math.inf))
    assert bounds.check_request(req).code == bounds.NON_FINITE
    assert bounds.check_request(risk_pb2.HaltRequest(reason="incident")) is None


def test_a_wrong_first_price_does_not_block_the_feed_for_good() -> None:
    """The anchor itself was poisoned: the true level, kept to by the feed, becomes the anchor; outliers that
    disagree with each other, or one that the true feed interrupts, never do."""
    guard = bounds.MarketGuard()

    def trade(price: float) -> market_pb2.MarketEvent:
        return market_pb2.MarketEvent(
            symbol="BTCUSDT", exchange_time_ns=T, trade=market_pb2.Trade(price=price, quantity=1)
        )

    assert guard.admit(trade(5_000_000.0)) is None  # the first price is 100x off: nothing to compare it to yet
    true_prices = [50_000.0 + i for i in range(bounds.REANCHOR_AFTER)]
    verdicts = [guard.admit(trade(p)) for p in true_prices]
    assert all(v is not None and v.code == bounds.PRICE_JUMP for v in verdicts[:-1])
    assert verdicts[-1] is None and guard.last.reanchored == 1
    assert guard.admit(trade(50_100.0)) is None  # the true level is the anchor now
    # Outliers alternating far apart never agree, however many there are.
    for i in range(3 * bounds.REANCHOR_AFTER):
        assert guard.admit(trade(5_000_000.0 if i % 2 else 1.0)).code == bounds.PRICE_JUMP
    # A run of outliers at one level, broken by a good price before it is long enough, starts again.
    for _ in range(bounds.REANCHOR_AFTER - 1):
        assert guard.admit(trade(900_000.0)).code == bounds.PRICE_JUMP
    assert guard.admit(trade(50_050.0)) is None
    assert guard.admit(trade(900_000.0)).code == bounds.PRICE_JUMP
    assert guard.last.reanchored == 1

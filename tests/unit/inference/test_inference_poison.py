"""Poisoned market values through the inference service itself (issue 15): NaN, ±inf, 1e300, negative and
2^63-1 prices, sizes and times on every market topic it consumes. Each is dead-lettered with its reason
code, the feature state never takes one, and the service goes on publishing finite signals afterwards.

The checks are unit-tested as pure functions in tests/unit/shared/test_bounds.py; this is the service's
consumer path, where one trade at -1e308 once made every later row of its symbol fail."""

from __future__ import annotations

import math
from collections.abc import Callable

from quantumedge.ingest.synthetic import SyntheticMarket
from quantumedge.shared import bounds, topics
from quantumedge.v1 import dlq_pb2, market_pb2
from tests.support.inference_feed import publish_market, wait_for
from tests.unit.inference.test_inference_service import SYMBOLS, Served, served

__all__ = ["served"]  # the pytest fixture imported from test_inference_service

BIG = float(2**63 - 1)
CODES = {bounds.NON_FINITE, bounds.OUT_OF_RANGE, bounds.NOT_POSITIVE, bounds.PRICE_JUMP, bounds.BAD_TIME}


def _set_trade(field: str, value: float) -> Callable[[market_pb2.MarketEvent], None]:
    return lambda ev: setattr(ev.trade, field, value)


def _set_book(field: str, value: float) -> Callable[[market_pb2.MarketEvent], None]:
    return lambda ev: setattr(ev.top_of_book, field, value)


def _set_level(field: str, value: float) -> Callable[[market_pb2.MarketEvent], None]:
    return lambda ev: setattr(ev.depth.bids[0], field, value)


def _set_time(ev: market_pb2.MarketEvent) -> None:
    ev.exchange_time_ns = 2**63 - 1


# (payload the poison is cut from, how it is poisoned)
POISONS: list[tuple[str, Callable[[market_pb2.MarketEvent], None]]] = [
    ("trade", _set_trade("price", math.nan)),
    ("trade", _set_trade("price", -1e308)),
    ("trade", _set_trade("price", math.inf)),
    ("trade", _set_trade("quantity", math.inf)),
    ("trade", _set_trade("quantity", -5.0)),
    ("trade", _set_trade("quantity", BIG)),
    ("top_of_book", _set_book("ask_price", math.inf)),
    ("top_of_book", _set_book("ask_price", 1e300)),
    ("top_of_book", _set_book("bid_price", math.nan)),
    ("top_of_book", _set_book("bid_quantity", -math.inf)),
    ("depth", _set_level("price", math.nan)),
    ("depth", _set_level("quantity", math.inf)),
    ("top_of_book", _set_time),
]


def _poisoned(events: list[market_pb2.MarketEvent]) -> list[market_pb2.MarketEvent]:
    """One poisoned copy of the last event of each kind, keeping its symbol and market time."""
    last: dict[str, market_pb2.MarketEvent] = {}
    for ev in events:
        if ev.symbol == "BTCUSDT":
            last[ev.WhichOneof("payload")] = ev
    out = []
    for kind, poison in POISONS:
        ev = market_pb2.MarketEvent()
        ev.CopyFrom(last[kind])
        ev.sequence += 1_000_000
        poison(ev)
        out.append(ev)
    return out


def _dead_letters(served: Served) -> list[dlq_pb2.DeadLetter]:
    letters = [dlq_pb2.DeadLetter.FromString(r.value) for r in served.bus.read_all(topics.DLQ)]
    return [d for d in letters if d.source_topic in topics.MARKET]


def test_poisoned_market_values_are_dead_lettered_and_signals_stay_finite(served: Served) -> None:
    events = list(SyntheticMarket(SYMBOLS, seed=4).events(400))
    half = len(events) // 2
    good = publish_market(served.bus, events[:half])
    poison = _poisoned(events[:half])
    publish_market(served.bus, poison)
    good += publish_market(served.bus, events[half:])
    settled = wait_for(lambda: served.service.events_seen == good and len(_dead_letters(served)) == len(poison))
    assert settled, (served.service.events_seen, good, [(d.source_topic, d.reason_code) for d in _dead_letters(served)])

    letters = _dead_letters(served)
    assert len(letters) == len(poison) and {d.reason_code for d in letters} <= CODES
    assert any(d.reason_code == bounds.NON_FINITE for d in letters)
    poison_time = max(ev.exchange_time_ns for ev in poison if ev.exchange_time_ns < 2**63 - 1)
    after = [s for s in served.signals() if s.symbol == "BTCUSDT" and s.event_time_ns > poison_time]
    # The poisoned symbol keeps deciding, and nothing it publishes carries a poisoned value.
    assert after, "no BTCUSDT signal after the poisoned records"
    for s in served.signals():
        values = [s.mid_price, s.spread_bps, s.edge, s.confidence, *(p.p_up for p in s.predictions)]
        assert all(math.isfinite(v) for v in values), s
    assert served.service.healthy()

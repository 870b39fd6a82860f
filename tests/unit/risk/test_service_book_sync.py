"""The risk service on the in-process bus: an entry ahead of its book is published once the book catches up."""

from __future__ import annotations

import pytest

from quantumedge.risk.book_sync import BOOK_BEHIND_SIGNAL
from quantumedge.risk.domain.reasons import primary_code
from quantumedge.shared import topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.v1 import risk_pb2
from tests.support.risk_builders import NS, book, quiet_settings, signal, snapshot
from tests.support.risk_rig import Rig


@pytest.fixture
def rig() -> Rig:
    r = Rig(MemoryBus(), quiet_settings())
    r.start()
    r.reports([snapshot(r.clock.now)])
    r.market(["BTCUSDT"])
    yield r
    r.close()


def test_the_service_holds_the_entry_until_its_book_catches_up(rig: Rig) -> None:
    t = rig.clock.now
    sig = signal(t_ns=t + 2 * NS, mid=50_500.0)
    rig.bus.publish(topics.SIGNALS, sig.symbol, sig)
    rig.bus.flush()
    # A market event on another symbol proves the signal was consumed (one consumer, in order) and is held.
    rig.market(["ETHUSDT"])
    assert rig.watcher.decisions_where(lambda d: d.signal_id == sig.signal_id) == []
    rig.market_event(book("BTCUSDT", 50_499.0, 50_501.0, t + 2 * NS))
    decision = rig.watcher.decision_for(sig.signal_id)
    assert decision.approved and decision.intent.kind == risk_pb2.INTENT_KIND_ENTRY
    assert decision.intent.reference_price == 50_501.0
    assert decision.intent.stop_loss_price < 50_499.0 < 50_501.0 < decision.intent.take_profit_price


def test_the_service_refuses_a_held_entry_when_the_feed_stalls(rig: Rig) -> None:
    sig = signal(t_ns=rig.clock.now + 2 * NS)
    rig.bus.publish(topics.SIGNALS, sig.symbol, sig)
    rig.bus.flush()
    rig.market(["ETHUSDT"])
    rig.clock.advance(3.0)  # past book_sync_max_wait_ns (2 s) with no BTCUSDT book: an execution heartbeat
    rig.reports([snapshot(rig.clock.now)])
    decision = rig.watcher.decision_for(sig.signal_id)
    assert not decision.approved and primary_code(decision) == BOOK_BEHIND_SIGNAL

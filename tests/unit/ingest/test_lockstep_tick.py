"""The lockstep present ticks: before a step's events go out, what became due by time alone is done and handled.

Registered `tick(now)` hooks (embedded.py wires each service's) run when the clock moves to a step's time, and
lockstep waits for a quiet bus before it publishes that step: a consumer of what a tick published has handled
it before any market event of the step exists on the bus.
"""

from __future__ import annotations

import threading

from quantumedge.embedded import tick_wiring
from quantumedge.ingest.lockstep import Lockstep
from quantumedge.ingest.synthetic import SyntheticMarket
from quantumedge.shared import topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.shared.bus.loop import ConsumerLoop
from quantumedge.shared.market_clock import MarketClock
from quantumedge.v1 import signal_pb2

START_NS = 1_700_000_000_000_000_000
STEPS = 20


def _market_events(bus: MemoryBus) -> int:
    return sum(sum(bus.end_offsets(t)) for t in (topics.BOOK, topics.DEPTH, topics.TRADES))


def test_ticks_are_handled_downstream_before_the_steps_events_are_published() -> None:
    bus = MemoryBus()
    clock = MarketClock(START_NS)
    market = SyntheticMarket(symbols=["BTCUSDT"], start_ns=START_NS, max_steps=STEPS)
    ticked: list[tuple[int, int]] = []  # (now, market events on the bus when the tick ran)
    handled: list[tuple[int, int]] = []  # (signal time, market events on the bus when it was handled)

    def tick(now_ns: int) -> None:
        ticked.append((now_ns, _market_events(bus)))
        bus.publish(
            topics.SIGNALS, "BTCUSDT", signal_pb2.Signal(signal_id=f"s{now_ns}", symbol="BTCUSDT", event_time_ns=now_ns)
        )

    class Service:
        def __init__(self) -> None:
            self.tick = tick

    wire = tick_wiring(clock)
    assert wire is not None and tick_wiring(None) is None  # the wall clock has no present to tick
    wire("inference", Service())
    downstream = ConsumerLoop(
        bus, "risk", {topics.SIGNALS: lambda sig, rec: handled.append((sig.event_time_ns, _market_events(bus)))}
    )
    downstream.start()
    source = Lockstep(market, bus, timeout_s=10.0, clock=clock)
    try:
        source.run(lambda ev: bus.publish(topics.TRADES if ev.HasField("trade") else topics.BOOK, ev.symbol, ev),
                   threading.Event())  # fmt: skip
    finally:
        downstream.stop()
    assert source.timeouts == 0
    steps = list(market.steps(STEPS))
    published = [sum(len(s) for s in steps[:i]) for i in range(STEPS)]
    # One tick per step, at that step's newest exchange time, with none of its events out yet.
    assert ticked == [(max(ev.exchange_time_ns for ev in step), n) for step, n in zip(steps, published, strict=True)]
    assert handled == ticked  # each handled on the market of the step before, never a later one
    assert clock() == ticked[-1][0]


def test_a_service_without_tick_is_not_registered() -> None:
    clock = MarketClock(START_NS)
    wire = tick_wiring(clock)
    assert wire is not None
    wire("risk", object())
    assert clock.tick(START_NS + 5) == START_NS + 5  # nothing to call, the present still moves


def test_the_bus_settles_after_each_services_tick() -> None:
    # Execution's heartbeat must not race with the fills of the signals inference's tick published.
    clock, seen = MarketClock(START_NS), []
    clock.on_tick(lambda now: seen.append(("execution", now)))
    clock.on_tick(lambda now: seen.append(("inference", now)))
    clock.tick(START_NS + 1, settle=lambda: seen.append(("settle", 0)))
    assert seen == [("execution", START_NS + 1), ("settle", 0), ("inference", START_NS + 1), ("settle", 0)]

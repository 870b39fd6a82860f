"""Lockstep: the embedded accelerated run shares one market present across every hop of the pipeline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from quantumedge.embedded import embedded_settings
from quantumedge.ingest.lockstep import Lockstep, LockstepError
from quantumedge.ingest.service import IngestService
from quantumedge.ingest.settings import IngestSettings
from quantumedge.ingest.synthetic import SyntheticMarket
from quantumedge.settings import Settings
from quantumedge.shared import topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.shared.bus.loop import ConsumerLoop
from quantumedge.v1 import execution_pb2, risk_pb2, signal_pb2

STEP_NS = 1_000_000_000
STEPS = 40
MARKET = b"qe-test-market-ns"


class Pipeline:
    """Three hops like the services' (book -> signals -> decisions -> reports), each noting the market time it
    handled and how far ingest's feed was ahead of it at that moment."""

    def __init__(self, bus: MemoryBus, ingest_now: Callable[[], int], slow_last_hop: bool) -> None:
        self.bus = bus
        self.ingest_now = ingest_now
        self.slow = slow_last_hop
        self.ahead: dict[str, list[int]] = {"inference": [], "risk": [], "execution": []}
        self.loops = [
            ConsumerLoop(bus, "inference", {topics.BOOK: self._on_book}),
            ConsumerLoop(bus, "risk", {topics.SIGNALS: self._on_signal}),
            ConsumerLoop(bus, "execution", {topics.DECISIONS: self._on_decision}),
        ]

    def _note(self, hop: str, market_ns: int) -> None:
        self.ahead[hop].append(self.ingest_now() - market_ns)

    def _on_book(self, event, record) -> None:
        t = event.exchange_time_ns
        self._note("inference", t)
        sig = signal_pb2.Signal(signal_id=f"s{t}", symbol=event.symbol, event_time_ns=t)
        self.bus.publish(topics.SIGNALS, event.symbol, sig, {MARKET: str(t).encode()})

    def _on_signal(self, signal, record) -> None:
        self._note("risk", signal.event_time_ns)
        decision = risk_pb2.RiskDecision(decision_id=f"d{signal.signal_id}", symbol=signal.symbol)
        self.bus.publish(topics.DECISIONS, signal.symbol, decision, {MARKET: record.headers[MARKET]})

    def _on_decision(self, decision, record) -> None:
        if self.slow:
            time.sleep(0.002)  # a slow last hop: without lockstep the feed runs away from it
        self._note("execution", int(record.headers[MARKET]))
        report = execution_pb2.ExecutionReport(report_id=f"r{decision.decision_id}")
        self.bus.publish(topics.REPORTS, decision.symbol, report)


def _run(tmp_path: Path, lockstep: bool, slow_last_hop: bool = False) -> Pipeline:
    bus = MemoryBus()
    settings = Settings(
        bus="memory",
        symbols=["BTCUSDT", "ETHUSDT"],
        data_dir=tmp_path,
        ingest=IngestSettings(source="synthetic", synthetic_steps=STEPS, lockstep=lockstep),
    )
    holder: dict[str, IngestService] = {}

    def ingest_now() -> int:
        stats = holder["ingest"].stats.all()
        return max((c.last_event_time_ns for c in stats), default=0)

    pipeline = Pipeline(bus, ingest_now, slow_last_hop)
    for loop in pipeline.loops:
        loop.start()
    ingest = holder["ingest"] = IngestService(settings, bus)
    try:
        ingest.start()
        assert ingest.source_done.wait(60)
        assert bus.wait_quiescent(30)
    finally:
        ingest.stop()
        for loop in pipeline.loops:
            loop.stop()
    return pipeline


def test_with_lockstep_every_hop_stays_within_one_step_of_ingest(tmp_path: Path) -> None:
    pipeline = _run(tmp_path, lockstep=True, slow_last_hop=True)
    for hop, ahead in pipeline.ahead.items():
        assert len(ahead) == 2 * STEPS, hop  # one book per symbol and step reached every hop
        assert max(ahead) <= STEP_NS, (hop, max(ahead))


def test_without_lockstep_a_slow_hop_falls_behind_the_feed(tmp_path: Path) -> None:
    # The control: the same pipeline, unsynchronised, is many steps behind ingest by the end.
    pipeline = _run(tmp_path, lockstep=False, slow_last_hop=True)
    assert max(pipeline.ahead["execution"]) > 5 * STEP_NS


def test_embedded_settings_turn_lockstep_on_for_the_accelerated_synthetic_run_only() -> None:
    base = Settings()
    assert embedded_settings(base, 10).ingest.lockstep is True
    paced = base.model_copy(update={"ingest": base.ingest.model_copy(update={"synthetic_speed": 1.0})})
    assert embedded_settings(paced, 10).ingest.lockstep is False
    assert base.ingest.lockstep is False  # `serve` (Kafka) never waits


def test_lockstep_refuses_a_bus_or_source_it_cannot_work_with() -> None:
    class NoQuiescence:
        pass

    with pytest.raises(LockstepError):
        Lockstep(SyntheticMarket(symbols=["BTCUSDT"]), NoQuiescence(), 1.0)

    class Replay:
        name = "replay"

    with pytest.raises(LockstepError):
        Lockstep(Replay(), MemoryBus(), 1.0)


def test_a_stuck_group_bounds_the_wait_and_the_feed_goes_on(tmp_path: Path) -> None:
    bus = MemoryBus()
    stuck = bus.consumer("stuck", [topics.BOOK])  # joins, never polls or commits
    source = Lockstep(SyntheticMarket(symbols=["BTCUSDT"], max_steps=3), bus, timeout_s=0.05)
    source.run(
        lambda ev: bus.publish(topics.TRADES if ev.HasField("trade") else topics.BOOK, ev.symbol, ev), threading.Event()
    )
    assert source.steps == 3 and source.timeouts == 3
    assert bus.undelivered()["stuck"] > 0
    stuck.close()

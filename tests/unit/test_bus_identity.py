"""Issue 13: the same market events through the four services on the in-process bus and through the backtester
give the same decisions and fills, id for id.

The bus side is the embedded lockstep run `make run` composes (embedded.run_up: synthetic source with a fixed
seed, synthetic_speed=0, one MarketClock, the services' tick(now) before each step), on a bus that keeps, in
publish order, every market event it carried. The backtest side is `Backtest` with the same settings and the
same shipped models, fed exactly those events. Compared: every decision's id, signal id, approval and reason
codes, and every fill's client order id and trade id (signatures differ: an ephemeral key per run).

QE_TEST_IDENTITY_STEPS sets the run's length (default 600 steps: about 20 s of bus run).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quantumedge.backtest.cli import load_backtest_models
from quantumedge.backtest.simulation import Backtest, Recorded
from quantumedge.embedded import UpOptions, embedded_settings, run_up
from quantumedge.risk.reasons import decision_codes
from quantumedge.settings import Settings, load_settings
from quantumedge.shared import topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.v1 import execution_pb2, market_pb2, risk_pb2
from tests.support.procs import free_port

STEPS = int(os.environ.get("QE_TEST_IDENTITY_STEPS", "600"))
START_NS = 1_700_000_000_000_000_000

DecisionKey = tuple[str, str, bool, tuple[str, ...]]
FillKey = tuple[str, str]


class MarketTapBus(MemoryBus):
    """The in-process bus, unchanged, that also keeps each market event in the order it was published."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.market: list[bytes] = []

    def _send(self, topic: str, key: bytes | None, value: bytes | None, headers: dict[str, bytes]) -> None:
        super()._send(topic, key, value, headers)
        if topic in topics.MARKET and value is not None:
            self.market.append(value)


def _decision_key(d: risk_pb2.RiskDecision) -> DecisionKey:
    return (d.decision_id, d.signal_id, d.approved, tuple(decision_codes(d)))


def _fill_keys(reports: list[execution_pb2.ExecutionReport]) -> list[FillKey]:
    return [(r.fill.client_order_id, r.fill.trade_id) for r in reports if r.HasField("fill") and not r.observed]


def _bus_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, MarketTapBus]:
    monkeypatch.setenv("QE_DATA_DIR", str(tmp_path / "var"))
    for service in ("ingest", "inference", "risk", "execution"):
        monkeypatch.setenv(f"QE_PORTS__{service.upper()}", str(free_port()))
    monkeypatch.setenv("QE_GRPC_HOST", "127.0.0.1")
    options = UpOptions(start_ns=START_NS)
    settings = embedded_settings(load_settings(), STEPS, options)
    bus = MarketTapBus(partitions=settings.kafka.partitions, symbols=settings.symbols)
    run_up(load_settings(), steps=STEPS, handle_signals=False, options=options, bus=bus)
    return settings, bus


def test_bus_run_and_backtest_of_the_same_events_make_the_same_decisions_and_fills(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, bus = _bus_run(tmp_path, monkeypatch)
    bus_decisions = [_decision_key(risk_pb2.RiskDecision.FromString(r.value)) for r in bus.read_all(topics.DECISIONS)]
    bus_reports = [execution_pb2.ExecutionReport.FromString(r.value) for r in bus.read_all(topics.REPORTS)]
    bus_fills = _fill_keys(bus_reports)
    assert any(d[2] for d in bus_decisions), "the bus run approved nothing: nothing would be compared"
    assert bus_fills, "the bus run filled nothing: nothing would be compared"

    events = [market_pb2.MarketEvent.FromString(v) for v in bus.market]
    recorded = Recorded()
    Backtest(settings, load_backtest_models(settings, False, None), [recorded]).run(events)
    bt_decisions = [_decision_key(d) for d in recorded.decisions]
    bt_fills = _fill_keys(recorded.reports)

    # The bus interleaves two symbols' records of one step by thread timing; each service handles each symbol
    # on its own, so the comparison is per id, sorted, never by position in one shared log.
    assert sorted(bt_decisions) == sorted(bus_decisions)
    assert sorted(bt_fills) == sorted(bus_fills)

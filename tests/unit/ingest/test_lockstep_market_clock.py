"""One present in the embedded lockstep run: two runs of one seed and one market start are the same run.

Every service reads the lockstep market clock (shared/market_clock.py), so a cooldown, a pending bound, a
staleness check or a decision's age means the same span of market in every run, whatever the machine's load.
And what becomes due by time alone happens at a fixed place in the run: before a step's events are published
the clock ticks (inference decides the rows due at that moment) and the bus goes quiet, so risk prices every
signal on the book of the step before, never on whichever of two books a thread happened to apply first. So
signals, decisions (all but their signatures: an ephemeral key per run) and reports are compared exactly.

QE_TEST_LOCKSTEP_STEPS sets the run's length (CI: 600; 3000 takes a few minutes and was checked by hand).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from quantumedge.embedded import UpOptions, market_clock_for, run_up
from quantumedge.settings import load_settings
from quantumedge.shared.market_clock import MarketClock
from tests.support.procs import free_port

STEPS = int(os.environ.get("QE_TEST_LOCKSTEP_STEPS", "600"))
START_NS = 1_700_000_000_000_000_000


def _lines(folder: Path, name: str) -> list[dict]:
    """The journal's records of one file, signatures left out, sorted by their JSON: which of two symbols'
    records of one step was published first is thread interleaving (one partition of the in-process bus holds
    both), and every service handles each symbol on its own."""
    records = []
    for line in (folder / name).read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        record.pop("signature", None)
        records.append(record)
    return sorted(records, key=lambda r: json.dumps(r, sort_keys=True))


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> Path:
    monkeypatch.setenv("QE_DATA_DIR", str(tmp_path / name / "var"))
    for service in ("ingest", "inference", "risk", "execution"):
        monkeypatch.setenv(f"QE_PORTS__{service.upper()}", str(free_port()))
    monkeypatch.setenv("QE_GRPC_HOST", "127.0.0.1")
    journal = tmp_path / name / "journal"
    options = UpOptions(journal=str(journal), start_ns=START_NS)
    run_up(load_settings(), steps=STEPS, handle_signals=False, options=options)
    return journal


def test_two_lockstep_runs_of_one_seed_make_the_same_signals_decisions_and_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = (_run(tmp_path, monkeypatch, name) for name in ("a", "b"))

    assert _lines(first, "signals.jsonl") == _lines(second, "signals.jsonl")
    decisions = [_lines(j, "decisions.jsonl") for j in (first, second)]
    assert decisions[0] == decisions[1]  # reference prices, sizes, TP/SL, reason texts included
    approved = [d for d in decisions[0] if d.get("approved")]
    assert approved and all(d["intent"]["reference_price"] > 0 for d in approved), "no approved decision compared"
    # Decided on market time: every decision is stamped with a step time of this run's market, not the wall.
    assert all(START_NS < int(d["decided_time_ns"]) <= START_NS + (STEPS + 1) * 10**9 for d in decisions[0])
    reports = [_lines(j, "reports.jsonl") for j in (first, second)]
    assert any("fill" in r for r in reports[0]), "no fill compared"
    assert reports[0] == reports[1]


def test_the_market_clock_is_chosen_for_the_lockstep_run_only() -> None:
    from quantumedge.embedded import embedded_settings

    base = load_settings()
    clock = market_clock_for(embedded_settings(base, 10), START_NS)
    assert isinstance(clock, MarketClock) and clock() == START_NS
    paced = base.model_copy(update={"ingest": base.ingest.model_copy(update={"synthetic_speed": 1.0})})
    assert market_clock_for(embedded_settings(paced, 10)) is None
    assert market_clock_for(base) is None  # `serve` (Kafka): the wall clock


def test_the_market_clock_never_goes_back() -> None:
    clock = MarketClock(5)
    assert clock.advance(10) == 10 and clock.advance(7) == 10 and clock() == 10

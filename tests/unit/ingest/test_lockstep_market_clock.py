"""One clock in the embedded lockstep run: two runs of one seed and one market start decide and fill alike.

Every service reads the lockstep market clock (shared/market_clock.py), so a cooldown, a pending bound, a
staleness check or a decision's age means the same span of market in every run, whatever the machine's load.
What can still differ is thread interleaving: the order of two symbols' records of one step on a topic, and
the order in which one consumer sees records of *different* topics inside one step (risk: a signal against the
book updates of the step that made it due). So the mark risk stamps on an intent (reference_price) is left out,
the sizes it sets from that mark (and the fills' quantities) are compared within a lot step, and signatures are
per run (ephemeral key). Fill prices and times come from execution's own book and are compared exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quantumedge.embedded import UpOptions, market_clock_for, run_up
from quantumedge.settings import load_settings
from quantumedge.shared.market_clock import MarketClock
from tests.support.procs import free_port

STEPS = 600
START_NS = 1_700_000_000_000_000_000


def _lines(folder: Path, name: str) -> list[dict]:
    """The journal's records of one file, sorted by their JSON: which of two symbols' records of one step was
    published first is thread interleaving (one partition of the in-process bus holds both)."""
    lines = (folder / name).read_text(encoding="utf-8").splitlines()
    return sorted((json.loads(line) for line in lines), key=lambda r: json.dumps(r, sort_keys=True))


def _decision(d: dict) -> tuple:
    intent = d.get("intent", {})
    codes = tuple(r.split(":", 1)[0] for r in d.get("reasons", []))
    return (
        d["decision_id"], d.get("signal_id"), d.get("approved", False), codes, d.get("decided_time_ns"),
        intent.get("intent_id"), intent.get("kind"), intent.get("side"),
    )  # fmt: skip


def _quantities(decisions: list[dict]) -> list[float]:
    return [d["intent"]["quantity"] for d in sorted(decisions, key=lambda d: d["decision_id"]) if "intent" in d]


def _fills(reports: list[dict]) -> list[tuple]:
    fills = [r["fill"] for r in reports if "fill" in r]
    return sorted((f["client_order_id"], f.get("trade_id"), f["price"], f.get("time_ns"), f["quantity"]) for f in fills)


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> Path:
    monkeypatch.setenv("QE_DATA_DIR", str(tmp_path / name / "var"))
    for service in ("ingest", "inference", "risk", "execution"):
        monkeypatch.setenv(f"QE_PORTS__{service.upper()}", str(free_port()))
    monkeypatch.setenv("QE_GRPC_HOST", "127.0.0.1")
    journal = tmp_path / name / "journal"
    options = UpOptions(journal=str(journal), start_ns=START_NS)
    run_up(load_settings(), steps=STEPS, handle_signals=False, options=options)
    return journal


def test_two_lockstep_runs_of_one_seed_make_the_same_decisions_and_fills(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = (_run(tmp_path, monkeypatch, name) for name in ("a", "b"))

    assert _lines(first, "signals.jsonl") == _lines(second, "signals.jsonl")
    decisions = [sorted(_decision(d) for d in _lines(j, "decisions.jsonl")) for j in (first, second)]
    assert decisions[0] == decisions[1]
    assert any(d[2] for d in decisions[0]), "no approved decision: nothing was compared"
    # Decided on market time: every decision is stamped with a step time of this run's market, not the wall.
    assert all(START_NS < int(d[4]) <= START_NS + (STEPS + 1) * 10**9 for d in decisions[0])
    # An entry is sized on risk's mark (see above), so its quantity and its exit's may differ by a lot step.
    sizes = [_quantities(_lines(j, "decisions.jsonl")) for j in (first, second)]
    assert sizes[0] == pytest.approx(sizes[1], rel=1e-3)
    fills = [_fills(_lines(j, "reports.jsonl")) for j in (first, second)]
    assert fills[0] and [f[:4] for f in fills[0]] == [f[:4] for f in fills[1]]
    assert [f[4] for f in fills[0]] == pytest.approx([f[4] for f in fills[1]], rel=1e-3)


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
